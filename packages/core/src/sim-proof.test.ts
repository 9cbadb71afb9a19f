import fc from "fast-check";
import { encodeAbiParameters, type Hex, keccak256, parseAbiParameters, stringToHex } from "viem";
import { describe, expect, it } from "vitest";
import { type SimProofInput, simProof, verifySimProof } from "./sim-proof.ts";
import { jobTypes } from "./tree.ts";

const h = (byte: string): Hex => `0x${byte.repeat(32)}`;

const input: SimProofInput = {
  type: "merge",
  blockNumber: 42,
  level: 2,
  index: 1,
  inputs: [h("11")],
  children: [h("aa"), h("bb")],
};

/** A 32-byte big-endian word as 64 hex digits. */
const word = (n: bigint | number): string => BigInt(n).toString(16).padStart(64, "0");

/** viem's ABI encoding of the documented field list, hashed; its error when it refuses them. */
function viemSimProof(v: SimProofInput): Hex | Error {
  try {
    return keccak256(
      encodeAbiParameters(
        parseAbiParameters("string, uint256, uint32, uint32, bytes32[], bytes32[]"),
        [
          `prover-boost/sim/v1/${v.type}`,
          BigInt(v.blockNumber),
          v.level,
          v.index,
          [...v.inputs],
          [...v.children],
        ],
      ),
    );
  } catch (err) {
    return err as Error;
  }
}

const ours = (v: SimProofInput): Hex | Error => {
  try {
    return simProof(v);
  } catch (err) {
    return err as Error;
  }
};

describe("simProof pinned vector", () => {
  it("is keccak256 over the documented ABI encoding (built by hand)", () => {
    const tag = "prover-boost/sim/v1/merge"; // 25 bytes: one padded word of data
    const tagData = stringToHex(tag).slice(2).padEnd(64, "0");
    // Head: six words (offsets for the three dynamic fields), then the tails in order.
    const encoded: Hex = `0x${[
      word(0xc0), // string at 6 * 32
      word(42), // uint256 block
      word(2), // uint32 level
      word(1), // uint32 index
      word(0x100), // inputs at 0xc0 + 2 words
      word(0x140), // children at 0x100 + 2 words
      word(25),
      tagData,
      word(1),
      "11".repeat(32),
      word(2),
      "aa".repeat(32),
      "bb".repeat(32),
    ].join("")}`;
    expect(simProof(input)).toBe(keccak256(encoded));
    // The same digest, computed from these bytes with an independent pure-Python Keccak-256.
    expect(simProof(input)).toBe(
      "0x08e0aa36ecc36fb1a11c30d69f6de44772e1c582dca67990a6bfe945c1b8ed7e",
    );
  });

  it("matches viem's encodeAbiParameters of the documented field list", () => {
    const leaf: SimProofInput = {
      type: "base",
      blockNumber: 123_456,
      level: 4,
      index: 11,
      inputs: [h("5c")],
      children: [],
    };
    for (const v of [input, leaf]) expect(simProof(v)).toBe(viemSimProof(v));
  });
});

describe("simProof's hand-written encoding", () => {
  const word = fc
    .uint8Array({ minLength: 32, maxLength: 32 })
    .chain((b) =>
      fc.constantFrom(
        `0x${Buffer.from(b).toString("hex")}`,
        `0x${Buffer.from(b).toString("hex").toUpperCase()}`,
      ),
    ) as fc.Arbitrary<Hex>;
  const valid = fc.record({
    type: fc.constantFrom(...jobTypes),
    blockNumber: fc.oneof(fc.nat(), fc.maxSafeNat()),
    level: fc.oneof(fc.nat(64), fc.constant(0xffff_ffff)),
    index: fc.oneof(fc.nat(), fc.constant(0xffff_ffff)),
    inputs: fc.array(word, { maxLength: 3 }),
    children: fc.array(word, { maxLength: 4 }),
  });

  it("gives viem's encoder's bytes for every valid node", () => {
    fc.assert(
      fc.property(valid, (v) => {
        expect(simProof(v)).toBe(viemSimProof(v));
      }),
      { numRuns: 300 },
    );
  });

  it("refuses whatever viem's encoder refuses, and a word that is not hex", () => {
    const badWord = fc.constantFrom(
      "0x",
      `0x${"ab".repeat(31)}`,
      `0x${"ab".repeat(33)}`,
    ) as fc.Arbitrary<Hex>;
    // Stricter than viem, which hashes such a word as whatever its digits parse to.
    for (const w of [`0x${"zz".repeat(32)}`, `0x${"ab".repeat(31)}g0`, `1x${"ab".repeat(32)}`]) {
      expect(ours({ ...input, children: [w as Hex] })).toBeInstanceOf(Error);
    }
    const broken = fc.oneof(
      valid.map((v) => ({ ...v, level: 0x1_0000_0000 })),
      valid.map((v) => ({ ...v, index: -1 })),
      valid.map((v) => ({ ...v, blockNumber: -1 })),
      fc.tuple(valid, badWord).map(([v, w]) => ({ ...v, inputs: [w] })),
      fc.tuple(valid, badWord).map(([v, w]) => ({ ...v, children: [...v.children, w] })),
    );
    fc.assert(
      fc.property(broken, (v) => {
        expect(viemSimProof(v)).toBeInstanceOf(Error);
        expect(ours(v)).toBeInstanceOf(Error);
      }),
      { numRuns: 200 },
    );
  });
});

describe("simProof", () => {
  it("is deterministic and depends on values, not object identity", () => {
    const copy: SimProofInput = {
      type: "merge",
      blockNumber: 42,
      level: 2,
      index: 1,
      inputs: [`0x${"11".repeat(32)}`],
      children: [`0x${"aa".repeat(32)}`, `0x${"bb".repeat(32)}`],
    };
    expect(simProof(input)).toBe(simProof(input));
    expect(simProof(copy)).toBe(simProof(input));
    expect(simProof(input)).toMatch(/^0x[0-9a-f]{64}$/);
  });

  const variants: [string, SimProofInput][] = [
    ["block number", { ...input, blockNumber: 43 }],
    ["block number 0", { ...input, blockNumber: 0 }],
    ["level", { ...input, level: 3 }],
    ["index", { ...input, index: 0 }],
    ["level and index swapped", { ...input, level: 1, index: 2 }],
    ["an input's last byte", { ...input, inputs: [`0x${"11".repeat(31)}12`] }],
    ["an extra input", { ...input, inputs: [h("11"), h("11")] }],
    ["no inputs", { ...input, inputs: [] }],
    ["a child proof", { ...input, children: [h("aa"), h("bc")] }],
    ["the child order", { ...input, children: [h("bb"), h("aa")] }],
    ["a missing child", { ...input, children: [h("aa")] }],
    [
      "an input moved to the children",
      { ...input, inputs: [], children: [h("11"), h("aa"), h("bb")] },
    ],
    ["a child moved to the inputs", { ...input, inputs: [h("11"), h("aa")], children: [h("bb")] }],
  ];

  it.each(variants)("changes when the %s changes", (_, variant) => {
    expect(simProof(variant)).not.toBe(simProof(input));
  });

  it("gives every job type its own proof", () => {
    const proofs = jobTypes.map((type) => simProof({ ...input, type }));
    expect(new Set(proofs).size).toBe(jobTypes.length);
  });

  it("gives all the variants distinct proofs", () => {
    const proofs = [input, ...variants.map(([, v]) => v)].map(simProof);
    expect(new Set(proofs).size).toBe(proofs.length);
  });

  it("accepts upper-case hex inputs as the same bytes", () => {
    expect(simProof({ ...input, inputs: [h("AB")] })).toBe(
      simProof({ ...input, inputs: [h("ab")] }),
    );
  });
});

describe("verifySimProof", () => {
  const proof = simProof(input);
  const digits = proof.slice(2);

  it("accepts the proof in any hex case", () => {
    expect(verifySimProof(input, proof)).toBe(true);
    expect(verifySimProof(input, `0x${digits.toUpperCase()}`)).toBe(true);
    const mixed = [...digits].map((c, i) => (i % 2 === 0 ? c.toUpperCase() : c)).join("");
    expect(verifySimProof(input, `0x${mixed}`)).toBe(true);
  });

  it("rejects a tampered proof", () => {
    const last = digits.at(-1)!;
    const flipped = (Number.parseInt(last, 16) ^ 1).toString(16);
    expect(verifySimProof(input, `0x${digits.slice(0, -1)}${flipped}`)).toBe(false);
    const first = (Number.parseInt(digits[0]!, 16) ^ 8).toString(16);
    expect(verifySimProof(input, `0x${first}${digits.slice(1)}`)).toBe(false);
  });

  it("rejects malformed proofs", () => {
    expect(verifySimProof(input, "")).toBe(false);
    expect(verifySimProof(input, "0x")).toBe(false);
    expect(verifySimProof(input, digits)).toBe(false);
    expect(verifySimProof(input, proof.slice(0, -2))).toBe(false);
    expect(verifySimProof(input, `${proof}00`)).toBe(false);
    expect(verifySimProof(input, ` ${proof}`)).toBe(false);
  });

  it("rejects the proof of another node", () => {
    expect(verifySimProof({ ...input, index: 2 }, proof)).toBe(false);
    expect(verifySimProof({ ...input, type: "block_root" }, proof)).toBe(false);
    expect(verifySimProof({ ...input, children: [h("bb"), h("aa")] }, proof)).toBe(false);
  });
});
