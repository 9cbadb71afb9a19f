import { type Hash, keccak256, stringToHex } from "viem";

/**
 * The escrow's ref of a penalty (its settlement row is written by the ledger's `chargePenalty`,
 * key `penalty:<id>`): the hash of its id, so the same penalty always has the same ref.
 */
export function penaltyRef(penaltyId: string): Hash {
  return keccak256(stringToHex(`prover-boost:penalty:${penaltyId}`));
}
