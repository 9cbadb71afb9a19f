// The aggregator loop: close due auctions, fan trees out, enforce deadlines, pay proven blocks.
// Every step is idempotent and guarded by stage compare-and-set, so ticks may overlap restarts.

import { closeDueAuctions } from "./close-auctions.ts";
import type { AggregatorContext } from "./context.ts";
import { enforceDeadlines, reissueInOpenProving } from "./deadlines.ts";
import { fanOutClosedBlocks } from "./fan-out.ts";
import { type PayoutHooks, payProvenBlocks } from "./payouts.ts";
import { ProofReconciler } from "./reconcile.ts";

export class Aggregator {
  private timer: NodeJS.Timeout | null = null;
  private running: Promise<void> | null = null;
  private stopped = false;
  private readonly reconciler: ProofReconciler;

  constructor(
    readonly ctx: AggregatorContext,
    private readonly hooks: PayoutHooks = {},
  ) {
    this.reconciler = new ProofReconciler(ctx);
  }

  /** One pass over every duty. */
  async tick(): Promise<void> {
    await closeDueAuctions(this.ctx);
    await fanOutClosedBlocks(this.ctx);
    await this.reconciler.run();
    await enforceDeadlines(this.ctx);
    await reissueInOpenProving(this.ctx);
    await payProvenBlocks(this.ctx, this.hooks);
  }

  start(): void {
    const loop = async () => {
      if (this.stopped) return;
      this.running = this.tick().catch((err) =>
        this.ctx.log.error({ err }, "aggregator tick failed"),
      );
      await this.running;
      this.running = null;
      if (!this.stopped) this.timer = setTimeout(loop, this.ctx.env.AGGREGATOR_TICK_MS);
    };
    this.timer = setTimeout(loop, 0);
  }

  async stop(): Promise<void> {
    this.stopped = true;
    if (this.timer) clearTimeout(this.timer);
    await this.running;
  }
}
