// Blocks nobody bids on, closed by hand: for tests that drive the aggregator's duties one call at
// a time (a stack started with `aggregator: false`).
import { closeDueAuctions } from "../../apps/aggregator/src/close-auctions.ts";
import { openAuction } from "../fixtures.ts";
import { eventually, type Stack } from "../harness.ts";

/**
 * Opens an auction for each block, closing `inMs` from now (long enough to open them all), waits
 * for the close and closes them: every block is `unclaimed`, its tree not fanned out yet.
 */
export async function closeUnclaimed(
  stack: Stack,
  blocks: readonly number[],
  opts: { txCount: number; inMs?: number },
): Promise<void> {
  const closes = Date.now() + (opts.inMs ?? 1000 + 50 * blocks.length);
  for (const n of blocks) {
    const o = await openAuction(n, {
      txCount: opts.txCount,
      biddingClosesAt: closes,
      proofDeadline: closes + 600_000,
    });
    await stack.client.openAuction(o.auction, o.txs, o.signature);
  }
  await eventually(async () => Date.now() > closes + 50, 10_000 + closes - Date.now());
  await closeDueAuctions(stack.aggregator.ctx);
}
