// How long a block stays open to anyone's proofs. A block in open proving (its auction went
// unclaimed, or its winner missed the deadline and was slashed) that nobody proves would hold its
// sequencer's funded reward for good: once OPEN_PROVING_WINDOW_MS have passed since it opened, it
// expires and the reward goes back to the sequencer (the escrow's refundReward on chain).

/** A block in open proving as the window rule reads it (all times unix ms). */
export interface OpenProvingBlock {
  /** When it moved to open proving (its `stages.open_proving`). */
  openedAt: bigint;
  /**
   * The fabric outages credited to the block so far (Block.fabricDownMs): the window is
   * lengthened by them, as the proof deadline is. Outages before the block opened count too:
   * the window errs on the provers' side.
   */
  fabricDownMs: bigint;
  /** An outage still open: no window ends while one is. */
  fabricDownSince: bigint | null;
}

/**
 * When the block's open proving ends, or null when it does not (a window of 0: blocks stay open
 * for good).
 */
export function openProvingEndsAt(block: OpenProvingBlock, windowMs: number): bigint | null {
  if (windowMs <= 0) return null;
  return block.openedAt + block.fabricDownMs + BigInt(windowMs);
}

/** Whether the block expires at `nowMs`: its window has ended and no outage is open. */
export function openProvingExpired(
  block: OpenProvingBlock,
  windowMs: number,
  nowMs: number,
): boolean {
  const end = openProvingEndsAt(block, windowMs);
  return end !== null && block.fabricDownSince === null && end <= BigInt(nowMs);
}
