import { privateKeyToAccount } from "viem/accounts";
import { describe, expect, it } from "vitest";
import { readAddress } from "./address.ts";

describe("readAddress", () => {
  const a = privateKeyToAccount(`0x${"07".repeat(32)}`).address;

  it("reads the checksummed form and one-case hex as the checksummed address", () => {
    for (const v of [a, a.toLowerCase(), `0x${a.slice(2).toUpperCase()}`]) {
      expect(readAddress(v)).toEqual({ ok: true, address: a });
    }
  });

  it("refuses every mixed-case spelling but the checksum", () => {
    const d = a.slice(2);
    for (let i = 0; i < 40; i++) {
      const c = d[i]!;
      if (!/[a-fA-F]/.test(c)) continue;
      const flipped = c === c.toLowerCase() ? c.toUpperCase() : c.toLowerCase();
      const v = `0x${d.slice(0, i)}${flipped}${d.slice(i + 1)}`;
      const digits = v.slice(2);
      if (digits === digits.toLowerCase() || digits === digits.toUpperCase()) continue;
      expect(readAddress(v), v).toEqual({ ok: false, problem: "checksum" });
    }
  });

  it("refuses what is not 0x + 40 hex digits", () => {
    for (const v of [
      "",
      "0x",
      d(39),
      d(41),
      `0X${"a".repeat(40)}`,
      `0x${"g".repeat(40)}`,
      ` ${d(40)}`,
    ]) {
      expect(readAddress(v), v).toEqual({ ok: false, problem: "format" });
    }
  });
});

function d(n: number) {
  return `0x${"a".repeat(n)}`;
}
