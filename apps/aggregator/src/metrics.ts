// The aggregator's metrics (prom-client), in its own registry, served on METRICS_PORT by
// server.ts: auctions closed and how late, payouts and slashes (counts and gwei; prom values are
// doubles, so money is exported in gwei as a view, never read back: the ledger keeps exact wei),
// and blocks by stage, counted when Prometheus scrapes (cached briefly).
import { weiToGwei } from "@prover-boost/config";
import { Counter, collectDefaultMetrics, Gauge, Histogram, Registry } from "prom-client";

/** A scrape's stage count is reused this long. */
const SCRAPE_CACHE_MS = 2000;

export class AggregatorMetrics {
  readonly registry = new Registry();
  /** From an auction's biddingClosesAt to the aggregator closing it. */
  readonly closeLag: Histogram;
  readonly auctionsClosed: Counter<"outcome">;
  readonly payouts: Counter<"role">;
  readonly payoutGwei: Counter<"role">;
  readonly slashes: Counter;
  readonly slashedGwei: Counter;
  readonly penalties: Counter<"kind">;
  readonly penaltyGwei: Counter<"kind">;
  private stageSource: (() => Promise<{ stage: string; blocks: number }[]>) | null = null;
  private cached: { at: number; read: Promise<{ stage: string; blocks: number }[]> } | null = null;

  constructor(private readonly now: () => number = Date.now) {
    const registers = [this.registry];
    collectDefaultMetrics({ register: this.registry, prefix: "prover_boost_aggregator_" });
    this.closeLag = new Histogram({
      name: "prover_boost_auction_close_lag_seconds",
      help: "From an auction's biddingClosesAt to the aggregator closing it",
      buckets: [0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60],
      registers,
    });
    this.auctionsClosed = new Counter({
      name: "prover_boost_auctions_closed_total",
      help: "Auctions closed, by outcome (committed: a winner; unclaimed: no eligible bid)",
      labelNames: ["outcome"],
      registers,
    });
    this.payouts = new Counter({
      name: "prover_boost_payouts_total",
      help: "Payouts made when blocks are paid, by recipient role",
      labelNames: ["role"],
      registers,
    });
    this.payoutGwei = new Counter({
      name: "prover_boost_payout_gwei_total",
      help: "Amount paid out in gwei, by recipient role (a float view; the ledger keeps exact wei)",
      labelNames: ["role"],
      registers,
    });
    this.slashes = new Counter({
      name: "prover_boost_slashes_total",
      help: "Winners' bonds slashed for a missed proof deadline",
      registers,
    });
    this.slashedGwei = new Counter({
      name: "prover_boost_slashed_gwei_total",
      help: "Bonds slashed in gwei (a float view; the ledger keeps exact wei)",
      registers,
    });
    this.penalties = new Counter({
      name: "prover_boost_penalties_total",
      help: "Penalties recorded, by kind (slash here; invalid_proof and withholding by the relay)",
      labelNames: ["kind"],
      registers,
    });
    this.penaltyGwei = new Counter({
      name: "prover_boost_penalty_gwei_total",
      help: "Collateral taken by penalties in gwei, by kind (a float view; the ledger keeps exact wei)",
      labelNames: ["kind"],
      registers,
    });
    const self = this;
    new Gauge({
      name: "prover_boost_blocks",
      help: "Blocks by stage",
      labelNames: ["stage"],
      registers,
      async collect() {
        this.reset();
        for (const s of await self.stages()) this.set({ stage: s.stage }, s.blocks);
      },
    });
    for (const outcome of ["committed", "unclaimed"]) this.auctionsClosed.inc({ outcome }, 0);
    this.penalties.inc({ kind: "slash" }, 0);
  }

  /** Wires the scrape-time stage count (service.ts). */
  setStageSource(read: () => Promise<{ stage: string; blocks: number }[]>): void {
    this.stageSource = read;
  }

  private stages(): Promise<{ stage: string; blocks: number }[]> {
    const now = this.now();
    if (this.cached && now - this.cached.at < SCRAPE_CACHE_MS) return this.cached.read;
    // A failed read (the database down) leaves the gauge out of this scrape, uncached.
    const read = (this.stageSource ? this.stageSource() : Promise.resolve([])).catch(() => {
      if (this.cached?.read === read) this.cached = null;
      return [];
    });
    this.cached = { at: now, read };
    return read;
  }

  slashed(wei: bigint): void {
    this.slashes.inc();
    this.slashedGwei.inc(weiToGwei(wei));
    this.penalties.inc({ kind: "slash" });
    this.penaltyGwei.inc({ kind: "slash" }, weiToGwei(wei));
  }

  paid(parts: readonly { role: string; amount: bigint }[]): void {
    for (const p of parts) {
      this.payouts.inc({ role: p.role });
      if (p.amount > 0n) this.payoutGwei.inc({ role: p.role }, weiToGwei(p.amount));
    }
  }
}
