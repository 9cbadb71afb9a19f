import { existsSync } from "node:fs";
import { createRequire } from "node:module";
import { dirname, join } from "node:path";
import fc from "fast-check";
import { keccak256 as viemKeccak256 } from "viem";
import { describe, expect, it } from "vitest";
import { keccak256Bytes, keccak256Hex, loadNativeKeccak } from "./keccak.ts";

const text = (s: string) => new TextEncoder().encode(s);

// The package ships prebuilt add-ons for some platforms (linux-x64 among them); elsewhere it
// needs a compiler at install time, and without one the pure-JS path is used.
const prebuilt = existsSync(
  join(
    dirname(createRequire(import.meta.url).resolve("keccak/package.json")),
    "prebuilds",
    `${process.platform}-${process.arch}`,
  ),
);
const native = loadNativeKeccak() !== null;

describe("keccak256", () => {
  it.runIf(prebuilt)("loads the native add-on where the package ships one", () => {
    expect(native).toBe(true);
  });

  it.each((native ? ["native", "js"] : ["js"]) as ("native" | "js")[])(
    "gives the published digests (%s)",
    (backend) => {
      expect(keccak256Hex(new Uint8Array(0), backend)).toBe(
        "0xc5d2460186f7233c927e7db2dcc703c0e500b653ca82273b7bfad8045d85a470",
      );
      expect(keccak256Hex(text("abc"), backend)).toBe(
        "0x4e03657aea45a94fc7d47ba826c8d667c0d1e6e33a64a036ec44f58fa12d6c45",
      );
    },
  );

  it.runIf(native)(
    "gives the same bytes on both paths, at every length around the 136-byte block",
    () => {
      fc.assert(
        fc.property(fc.uint8Array({ minLength: 0, maxLength: 420 }), (data) => {
          const expected = viemKeccak256(data);
          expect(keccak256Hex(data, "native")).toBe(expected);
          expect(keccak256Hex(data, "js")).toBe(expected);
        }),
        { numRuns: 2000 },
      );
    },
  );

  it.runIf(native)("hashes a view into a larger buffer by its own bytes only", () => {
    const backing = new Uint8Array(300).map((_, i) => i);
    const view = backing.subarray(17, 17 + 150);
    expect(keccak256Hex(view, "native")).toBe(viemKeccak256(backing.slice(17, 167)));
  });

  it.runIf(native)("starts each hash afresh (no state carried from the previous call)", () => {
    const a = keccak256Bytes(text("first"), "native");
    const kept = Uint8Array.from(a);
    keccak256Bytes(new Uint8Array(500).fill(9), "native");
    expect(Uint8Array.from(a)).toEqual(kept);
    expect(Uint8Array.from(keccak256Bytes(text("first"), "native"))).toEqual(kept);
  });
});
