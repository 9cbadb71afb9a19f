// Block-level hashing and the slot clock.
import { concat, type Hex, keccak256 } from "viem";

/** keccak256 of the concatenated 32-byte transaction hashes, in block order. */
export function txsHash(txs: readonly Hex[]): Hex {
  return keccak256(txs.length === 0 ? "0x" : concat(txs));
}

export interface SlotClock {
  genesisTimeMs: number;
  slotDurationMs: number;
}

export function slotAt(clock: SlotClock, nowMs: number): bigint {
  if (!(clock.slotDurationMs > 0)) throw new RangeError("slotDurationMs must be positive");
  if (nowMs < clock.genesisTimeMs) return 0n;
  return BigInt(Math.floor((nowMs - clock.genesisTimeMs) / clock.slotDurationMs));
}
