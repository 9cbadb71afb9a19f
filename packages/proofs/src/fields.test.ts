import fc from "fast-check";
import { type Hex, toHex } from "viem";
import { describe, expect, it } from "vitest";
import { FIELD_MODULUS, fieldHex, nodeInputs, parseField, splitHash } from "./fields.ts";

const hash = fc.uint8Array({ minLength: 32, maxLength: 32 }).map((b) => toHex(b));

describe("field encoding", () => {
  it("splits any 32-byte hash into two 128-bit field elements that rebuild it", () => {
    fc.assert(
      fc.property(hash, (h) => {
        const [hi, lo] = splitHash(h);
        expect(BigInt(hi) < 1n << 128n && BigInt(lo) < 1n << 128n).toBe(true);
        expect((BigInt(hi) << 128n) | BigInt(lo)).toBe(BigInt(h));
        expect(hi.length).toBe(66);
        expect(lo.length).toBe(66);
      }),
    );
  });

  it("takes exactly the canonical 32-byte field elements", () => {
    expect(parseField(fieldHex(FIELD_MODULUS - 1n))).toBe(FIELD_MODULUS - 1n);
    expect(parseField(`0x${FIELD_MODULUS.toString(16).padStart(64, "0")}`)).toBeUndefined();
    expect(parseField(`0x${"ff".repeat(32)}`)).toBeUndefined();
    expect(parseField("0x01")).toBeUndefined();
    expect(parseField(`0x${"zz".repeat(32)}`)).toBeUndefined();
    expect(() => fieldHex(FIELD_MODULUS)).toThrow(RangeError);
    expect(() => fieldHex(-1n)).toThrow(RangeError);
  });

  it("lays a node's inputs out in circuit order", () => {
    const tx = `0x${"01".repeat(16)}${"02".repeat(16)}` as Hex;
    expect(
      nodeInputs({
        type: "base",
        blockNumber: 5,
        level: 3,
        index: 2,
        txHash: tx,
        childOutputs: [],
      }),
    ).toEqual([
      fieldHex(5n),
      fieldHex(3n),
      fieldHex(2n),
      fieldHex(BigInt(`0x${"01".repeat(16)}`)),
      fieldHex(BigInt(`0x${"02".repeat(16)}`)),
    ]);
    const a = fieldHex(7n);
    const b = fieldHex(8n);
    expect(
      nodeInputs({ type: "merge", blockNumber: 5, level: 1, index: 0, childOutputs: [a, b] }),
    ).toEqual([fieldHex(5n), fieldHex(1n), fieldHex(0n), a, b]);
    expect(() =>
      nodeInputs({ type: "merge", blockNumber: 5, level: 1, index: 0.5, childOutputs: [a, b] }),
    ).toThrow(RangeError);
  });
});
