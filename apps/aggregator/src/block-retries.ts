// Blocks whose duty (payout, fan-out) failed, with when each is tried again: until then a pass
// leaves them out, so blocks that keep failing never fill a pass and hold up the blocks after
// them, nor log an error every tick. Kept by the aggregator across ticks.

/** The wait before a failed block is tried again, doubling up to the max. */
export const BLOCK_RETRY_BASE_MS = 1_000;
export const BLOCK_RETRY_MAX_MS = 60_000;

export class BlockRetries {
  private readonly next = new Map<number, { at: number; waitMs: number }>();

  /**
   * The blocks still waiting for their retry at `now`. A block whose retry is due keeps its wait
   * for the next failure, unless it has gone untried for BLOCK_RETRY_MAX_MS since (done by
   * another process, say): then it is forgotten.
   */
  waiting(now: number): number[] {
    const out: number[] = [];
    for (const [n, r] of this.next) {
      if (r.at > now) out.push(n);
      else if (now - r.at > BLOCK_RETRY_MAX_MS) this.next.delete(n);
    }
    return out;
  }

  /** Records a failure; returns the wait before the block is tried again. */
  failed(blockNumber: number, now: number): number {
    const prev = this.next.get(blockNumber);
    const waitMs = prev ? Math.min(prev.waitMs * 2, BLOCK_RETRY_MAX_MS) : BLOCK_RETRY_BASE_MS;
    this.next.set(blockNumber, { at: now + waitMs, waitMs });
    return waitMs;
  }

  done(blockNumber: number): void {
    this.next.delete(blockNumber);
  }
}
