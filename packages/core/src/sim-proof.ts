// The simulated prover ("sim"). A SIMULATION, not a zero-knowledge proof: a node's proof is
// keccak256 over its job type, block number, level, index, its own inputs and its children's
// proofs in order. The relay re-computes it to check a submission, so a block's root proof
// depends only on its transactions, never on which worker proved what.
import type { Hex } from "viem";
import { keccak256Hex } from "./keccak.ts";
import type { JobType } from "./tree.ts";

export interface SimProofInput {
  type: JobType;
  blockNumber: number;
  level: number;
  index: number;
  /** The node's own inputs: a base job's transaction hash; empty for other nodes. */
  inputs: readonly Hex[];
  /** Children's proofs, left to right. */
  children: readonly Hex[];
}

/**
 * The ABI encoding of (string tag, uint256 blockNumber, uint32 level, uint32 index,
 * bytes32[] inputs, bytes32[] children), written straight into bytes: the same bytes as viem's
 * encodeAbiParameters of that list (sim-proof.test.ts holds them to it), at a fraction of its
 * cost, since every result a relay checks and every proof a simulated worker makes encodes one.
 * Anything the ABI encoder would refuse (a non-32-byte word, an integer out of its type's
 * range) throws here too.
 */
function encodeSimFields(input: SimProofInput): Uint8Array {
  const tag = textEncoder.encode(`prover-boost/sim/v1/${input.type}`);
  const tagWords = Math.ceil(tag.length / 32);
  const inputsAt = 6 * 32 + 32 * (1 + tagWords);
  const childrenAt = inputsAt + 32 * (1 + input.inputs.length);
  const out = new Uint8Array(childrenAt + 32 * (1 + input.children.length));
  putUint(out, 0, 6 * 32, Number.MAX_SAFE_INTEGER);
  putUint(out, 32, input.blockNumber, Number.MAX_SAFE_INTEGER);
  putUint(out, 64, input.level, 0xffff_ffff);
  putUint(out, 96, input.index, 0xffff_ffff);
  putUint(out, 128, inputsAt, Number.MAX_SAFE_INTEGER);
  putUint(out, 160, childrenAt, Number.MAX_SAFE_INTEGER);
  putUint(out, 192, tag.length, Number.MAX_SAFE_INTEGER);
  out.set(tag, 224);
  putWords(out, inputsAt, input.inputs);
  putWords(out, childrenAt, input.children);
  return out;
}

const textEncoder = new TextEncoder();

/** A non-negative integer up to `max` as a big-endian 32-byte word at `at`. */
function putUint(out: Uint8Array, at: number, value: number, max: number): void {
  if (!Number.isSafeInteger(value) || value < 0 || value > max) {
    throw new RangeError(`${value} is not an integer in 0..${max}`);
  }
  let v = value;
  for (let i = at + 31; v > 0; i--) {
    out[i] = v % 256;
    v = Math.floor(v / 256);
  }
}

/** A dynamic bytes32[]: its length word at `at`, then each 32-byte word. */
function putWords(out: Uint8Array, at: number, words: readonly Hex[]): void {
  putUint(out, at, words.length, Number.MAX_SAFE_INTEGER);
  for (let w = 0; w < words.length; w++) {
    const hex = words[w]!;
    if (hex.length !== 66 || hex[0] !== "0" || (hex[1] !== "x" && hex[1] !== "X")) {
      throw new RangeError(`${hex} is not a 32-byte hex word`);
    }
    const base = at + 32 * (w + 1);
    for (let i = 0; i < 32; i++) {
      const hi = nibble(hex.charCodeAt(2 + 2 * i));
      const lo = nibble(hex.charCodeAt(3 + 2 * i));
      if (hi < 0 || lo < 0) throw new RangeError(`${hex} is not a 32-byte hex word`);
      out[base + i] = hi * 16 + lo;
    }
  }
}

function nibble(c: number): number {
  if (c >= 48 && c <= 57) return c - 48; // 0-9
  if (c >= 97 && c <= 102) return c - 87; // a-f
  if (c >= 65 && c <= 70) return c - 55; // A-F
  return -1;
}

export function simProof(input: SimProofInput): Hex {
  return keccak256Hex(encodeSimFields(input));
}

export function verifySimProof(input: SimProofInput, proof: string): boolean {
  return proof.toLowerCase() === simProof(input);
}
