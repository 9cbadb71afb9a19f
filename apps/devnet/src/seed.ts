// Everything random in the devnet derives from --seed, so the same seed gives the same blocks.
import { encodePacked, type Hex, keccak256 } from "viem";

export function derive(seed: string, ...parts: (string | number)[]): Hex {
  return keccak256(encodePacked(["string", "string"], [seed, parts.join("/")]));
}

/** Deterministic integer in [min, max] from the seed and a label. */
export function pick(
  seed: string,
  min: number,
  max: number,
  ...parts: (string | number)[]
): number {
  const h = BigInt(derive(seed, "pick", ...parts));
  return min + Number(h % BigInt(max - min + 1));
}

export const sequencerKeyOf = (seed: string): Hex => derive(seed, "sequencer-key");
export const operatorKeyOf = (seed: string, i: number): Hex => derive(seed, "operator-key", i);

/**
 * A block's transactions: each one's data (96 bytes drawn from the seed) and its hash,
 * keccak256 of the data, as the relay checks them.
 */
export function blockTxs(
  seed: string,
  blockNumber: number,
  count: number,
): { hashes: Hex[]; data: Hex[] } {
  const data = Array.from(
    { length: count },
    (_, i) =>
      `0x${[0, 1, 2].map((k) => derive(seed, "tx", blockNumber, i, k).slice(2)).join("")}` as Hex,
  );
  return { hashes: data.map((d) => keccak256(d)), data };
}
