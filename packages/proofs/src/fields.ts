// BN254 scalar-field encoding of the values a node's circuit is proved over.
import type { JobType } from "@prover-boost/core";
import { type Hex, isHex } from "viem";
import type { ProofNode } from "./types.ts";

/** The BN254 scalar field modulus: every public input is below it. */
export const FIELD_MODULUS =
  21888242871839275222246405745257275088548364400416034343698204186575808495617n;

const MASK_128 = (1n << 128n) - 1n;

/** A field element as 32-byte lower-case hex. */
export function fieldHex(value: bigint): Hex {
  if (value < 0n || value >= FIELD_MODULUS) throw new RangeError("value is not a field element");
  return `0x${value.toString(16).padStart(64, "0")}`;
}

/** A 32-byte hex string that is a canonical field element, or undefined. */
export function parseField(hex: string): bigint | undefined {
  if (!isHex(hex, { strict: true }) || hex.length !== 66) return undefined;
  const value = BigInt(hex);
  return value < FIELD_MODULUS ? value : undefined;
}

/** A 32-byte hash split into its high and low 128-bit halves, each a field element. */
export function splitHash(hash: Hex): [Hex, Hex] {
  if (!isHex(hash, { strict: true }) || hash.length !== 66) {
    throw new TypeError("a hash must be 32-byte hex");
  }
  const value = BigInt(hash);
  return [fieldHex(value >> 128n), fieldHex(value & MASK_128)];
}

/** How many children each job type's circuit commits to. */
export const childCount: Readonly<Record<JobType, number>> = {
  base: 0,
  merge: 2,
  block_root: 2,
  single_tx_block_root: 1,
  empty_block_root: 0,
};

function position(n: number, what: string): Hex {
  if (!Number.isSafeInteger(n) || n < 0)
    throw new RangeError(`${what} must be a non-negative integer`);
  return fieldHex(BigInt(n));
}

/**
 * The public inputs a node's proof must carry, in the circuit's order, before its output:
 * block, level, index, then the base's transaction hash (hi, lo) or the children's outputs.
 * Throws when the node does not fit its circuit (wrong child count, a txHash on a non-base node,
 * a child output that is not a field element).
 */
export function nodeInputs(node: ProofNode): Hex[] {
  const inputs = [
    position(node.blockNumber, "blockNumber"),
    position(node.level, "level"),
    position(node.index, "index"),
  ];
  if (node.type === "base") {
    if (node.txHash === undefined) throw new TypeError("a base node needs its txHash");
    inputs.push(...splitHash(node.txHash));
  } else if (node.txHash !== undefined) {
    throw new TypeError(`a ${node.type} node takes no txHash`);
  }
  if (node.childOutputs.length !== childCount[node.type]) {
    throw new TypeError(
      `a ${node.type} node takes ${childCount[node.type]} child outputs, got ${node.childOutputs.length}`,
    );
  }
  for (const child of node.childOutputs) {
    const value = parseField(child);
    if (value === undefined) throw new TypeError("a child output must be a 32-byte field element");
    inputs.push(fieldHex(value));
  }
  return inputs;
}
