// The aggregator loop: close due auctions, fan trees out, enforce deadlines, pay proven blocks.
// Every step is idempotent and guarded by stage compare-and-set, so ticks may overlap restarts.
// Before anything that needs Redis, the fabric keeper (rebuild.ts) checks it is reachable and
// rebuilds trees it lost; while it is unreachable only Postgres-only duties run, and nothing is
// slashed.

import type { Settler } from "@prover-boost/chain";
import { STAGE } from "@prover-boost/core";
import { BlockRetries } from "./block-retries.ts";
import { closeDueAuctions } from "./close-auctions.ts";
import type { AggregatorContext } from "./context.ts";
import { enforceDeadlines, reissueInOpenProving } from "./deadlines.ts";
import { anyOpenProving, expireOpenProving } from "./expire-open-proving.ts";
import { fanOutClosedBlocks } from "./fan-out.ts";
import { type PayoutHooks, payProvenBlocks } from "./payouts.ts";
import { FabricKeeper } from "./rebuild.ts";
import { ProofReconciler } from "./reconcile.ts";
import { anyPastDeadline, readTickView } from "./tick-view.ts";

export class Aggregator {
  private timer: NodeJS.Timeout | null = null;
  private running: Promise<void> | null = null;
  private stopped = false;
  private readonly reconciler: ProofReconciler;
  private readonly payoutRetries = new BlockRetries();
  private readonly fanOutRetries = new BlockRetries();
  private readonly closeRetries = new BlockRetries();
  private readonly judgeRetries = new BlockRetries();
  private readonly reissueCursor = { after: -1 };
  readonly keeper: FabricKeeper;

  constructor(
    readonly ctx: AggregatorContext,
    private readonly hooks: PayoutHooks = {},
    /** COLLATERAL=chain: runs on its own loop, so a slow L1 never holds up the duties. */
    private readonly settler: Settler | null = null,
  ) {
    this.reconciler = new ProofReconciler(ctx);
    this.keeper = new FabricKeeper(ctx);
  }

  /** One pass over every duty. */
  async tick(): Promise<void> {
    const { ctx } = this;
    // One read says which duties have work (tick-view.ts); each then reads what it acts on.
    const view = await readTickView(ctx, ctx.now());
    // A block committed now is fanned out in this same tick.
    if (view.auctionsDue && (await closeDueAuctions(ctx, this.closeRetries)) > 0) {
      view.toFanOut = true;
    }
    // Payouts too wait for the fabric: a paid block's queues are removed as it is paid.
    if (!(await this.keeper.run(view.proving))) return;
    // Each duty on its own: one that fails (logged) does not keep the others from running.
    if (view.toFanOut)
      await this.duty("fan-out", () => fanOutClosedBlocks(ctx, this.fanOutRetries));
    await this.duty("proof reconciliation", () =>
      this.reconciler.run({ blocks: view.proving, completed: this.keeper.completed }),
    );
    if (anyPastDeadline(view, ctx.now())) {
      await this.duty("deadlines", () =>
        enforceDeadlines(ctx, () => this.keeper.isUp, this.judgeRetries),
      );
    }
    if (view.proving.some((b) => b.stage === STAGE.open_proving)) {
      await this.duty("open-proving re-issue", () => reissueInOpenProving(ctx, this.reissueCursor));
    }
    if (anyOpenProving(view.proving, ctx.config.openProvingWindowMs)) {
      await this.duty("open-proving expiry", () =>
        expireOpenProving(ctx, view.proving, () => this.keeper.isUp),
      );
    }
    if (view.toPay) {
      await this.duty("payouts", () => payProvenBlocks(ctx, this.hooks, this.payoutRetries));
    }
  }

  private async duty(name: string, run: () => Promise<unknown>): Promise<void> {
    try {
      await run();
    } catch (err) {
      this.ctx.log.error({ err, duty: name }, `aggregator duty failed: ${name}`);
    }
  }

  start(): void {
    const loop = async () => {
      if (this.stopped) return;
      this.running = this.tick().catch((err) =>
        this.ctx.log.error({ err }, "aggregator tick failed"),
      );
      await this.running;
      this.running = null;
      if (!this.stopped) this.timer = setTimeout(loop, this.ctx.config.tickMs);
    };
    this.timer = setTimeout(loop, 0);
    this.keeper.watch(this.ctx.config.tickMs);
    this.settler?.start(this.ctx.config.tickMs);
  }

  async stop(): Promise<void> {
    this.stopped = true;
    if (this.timer) clearTimeout(this.timer);
    await this.settler?.stop();
    await this.running;
    await this.keeper.stop();
  }
}
