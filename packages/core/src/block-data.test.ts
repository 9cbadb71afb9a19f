import fc from "fast-check";
import { type Hex, keccak256, toBytes } from "viem";
import { describe, expect, it } from "vitest";
import { type SlotClock, slotAt, txsHash } from "./block-data.ts";

const tx = (byte: string): Hex => `0x${byte.repeat(32)}`;

describe("txsHash", () => {
  it("hashes the empty block as keccak256 of no bytes", () => {
    // The well-known keccak256 of the empty string.
    const empty = "0xc5d2460186f7233c927e7db2dcc703c0e500b653ca82273b7bfad8045d85a470";
    expect(txsHash([])).toBe(empty);
    expect(keccak256("0x")).toBe(empty);
  });

  it("hashes the concatenated 32-byte tx hashes in block order", () => {
    const a = tx("11");
    const b = tx("22");
    const c = tx("ab");
    const joined: Hex = `0x${"11".repeat(32)}${"22".repeat(32)}${"ab".repeat(32)}`;
    expect(toBytes(joined)).toHaveLength(96);
    expect(txsHash([a, b, c])).toBe(keccak256(joined));
    // Also as raw bytes, built without any hex concatenation.
    const bytes = new Uint8Array(96);
    bytes.fill(0x11, 0, 32);
    bytes.fill(0x22, 32, 64);
    bytes.fill(0xab, 64, 96);
    expect(txsHash([a, b, c])).toBe(keccak256(bytes));
    // Pinned with an independent pure-Python Keccak-256 over the same 96 bytes.
    expect(txsHash([a, b, c])).toBe(
      "0x13f6077489d3a63b4229772a2b166f58edf7b6e2e36ecbf0618804d80ab3c1a1",
    );
  });

  it("hashes a single tx as keccak256 of that tx hash", () => {
    expect(txsHash([tx("42")])).toBe(keccak256(tx("42")));
    expect(txsHash([tx("42")])).toBe(
      "0x1874b9acfaca383a76e8f7253bdb183902f36254b1e5e452ac78228db63e93f3",
    );
    expect(txsHash([tx("42")])).not.toBe(tx("42"));
  });

  it("depends on the order and on every tx", () => {
    const base = txsHash([tx("01"), tx("02")]);
    expect(txsHash([tx("02"), tx("01")])).not.toBe(base);
    expect(txsHash([tx("01"), tx("03")])).not.toBe(base);
    expect(txsHash([tx("01")])).not.toBe(base);
    expect(txsHash([tx("01"), tx("02"), tx("02")])).not.toBe(base);
    expect(txsHash([tx("01"), tx("02")])).toBe(base);
  });

  it("returns a lowercase 32-byte hex string", () => {
    expect(txsHash([tx("AB")])).toMatch(/^0x[0-9a-f]{64}$/);
    expect(txsHash([tx("AB")])).toBe(txsHash([tx("ab")]));
  });
});

describe("slotAt", () => {
  const clock: SlotClock = { genesisTimeMs: 1_000, slotDurationMs: 12_000 };

  it.each([
    [1_000, 0n],
    [1_001, 0n],
    [12_999, 0n],
    [13_000, 1n],
    [13_001, 1n],
    [24_999, 1n],
    [25_000, 2n],
    [1_000 + 12_000 * 1_000_000, 1_000_000n],
    [1_000 + 12_000 * 1_000_000 - 1, 999_999n],
  ])("at %i ms is slot %s", (nowMs, slot) => {
    expect(slotAt(clock, nowMs)).toBe(slot);
  });

  it.each([999, 0, -1, -1_000_000])("is 0 before genesis (%i ms)", (nowMs) => {
    expect(slotAt(clock, nowMs)).toBe(0n);
  });

  it("floors fractional milliseconds", () => {
    expect(slotAt(clock, 12_999.999)).toBe(0n);
    expect(slotAt({ genesisTimeMs: 0, slotDurationMs: 3 }, 8.9)).toBe(2n);
  });

  it("works with a real-world genesis", () => {
    const realistic: SlotClock = { genesisTimeMs: 1_700_000_000_000, slotDurationMs: 36_000 };
    expect(slotAt(realistic, 1_700_000_000_000)).toBe(0n);
    expect(slotAt(realistic, 1_700_000_036_000)).toBe(1n);
    expect(slotAt(realistic, 1_700_003_600_000)).toBe(100n);
    expect(slotAt(realistic, 1_699_999_999_999)).toBe(0n);
  });

  it("puts now inside its slot's window", () => {
    fc.assert(
      fc.property(
        fc.integer({ min: 0, max: 2 ** 40 }),
        fc.integer({ min: 1, max: 100_000 }),
        fc.integer({ min: 0, max: 2 ** 40 }),
        (genesisTimeMs, slotDurationMs, offset) => {
          const nowMs = genesisTimeMs + offset;
          const slot = slotAt({ genesisTimeMs, slotDurationMs }, nowMs);
          const start = BigInt(genesisTimeMs) + slot * BigInt(slotDurationMs);
          expect(start <= BigInt(nowMs)).toBe(true);
          expect(BigInt(nowMs) < start + BigInt(slotDurationMs)).toBe(true);
        },
      ),
      { numRuns: 2000 },
    );
  }, 120_000);
});
