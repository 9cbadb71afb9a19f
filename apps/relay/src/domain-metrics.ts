// The relay's market metrics (prom-client), beside the HTTP ones in metrics.ts, in one registry
// per relay. Events on the request path only bump counters and histograms with small fixed
// label sets; what needs a query (queue depths, live leases, workers signed in) is read when
// Prometheus scrapes, at most once per SCRAPE_CACHE_MS whatever the number of scrapers.
import { performance } from "node:perf_hooks";
import { weiToGwei } from "@prover-boost/config";
import { type JobType, jobTypes } from "@prover-boost/core";
import type { PopCount } from "@prover-boost/queue";
import { Counter, collectDefaultMetrics, Gauge, Histogram, Registry } from "prom-client";

/** A scrape's reads are reused this long (several Prometheus servers, or a dashboard's refresh). */
export const SCRAPE_CACHE_MS = 2000;

/** Seconds, from a fast lease to a slow real proof. */
const waitBuckets = [0.01, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60, 300, 900, 3600];

/**
 * The steps of handing a job in and out, each timed on its own (prover_boost_job_step_seconds):
 * a result's `verify` (the proof checked), `complete` (its completion in Redis) and `proof_mark`
 * (its record in Postgres); a granted lease's `gate` (the wait for its attempt's turn,
 * LEASE_CONCURRENCY), `take` (the look, pop and record in Redis, one after another, with the
 * list of blocks when that is not cached) and `lease_mark` (its record in Postgres, written after
 * the lease is answered: services/lease-marks.ts). A result
 * that asks for the next job starts that lease as its completion's last round trip is sent (a
 * block's root: once its mark is in), and is answered once its proof's mark and the lease are
 * both done.
 */
export type JobStep = "verify" | "complete" | "proof_mark" | "gate" | "take" | "lease_mark";

/** Seconds, from a Redis round trip on an idle machine to a stalled dependency. */
const stepBuckets = [0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 1, 5];

/** Jobs in one BullMQ state, of one job type, in one kind of queue (summed over blocks). */
export interface QueueDepth {
  /** The queue: base, merge or root (the root queue holds the three root job types). */
  kind: string;
  type: string;
  state: string;
  jobs: number;
}

/** What the scrape-time gauges read (relay.ts wires it to the fabric, registry and database). */
export interface RelayGaugeSource {
  /** Jobs of the blocks being proven, by queue kind, job type and BullMQ state. */
  queueDepth(): Promise<QueueDepth[]>;
  /** Worker sessions signed in and not expired. */
  workersOnline(): Promise<number>;
}

export class RelayMetrics {
  readonly registry = new Registry();
  /** HTTP requests by route and status, and their durations (metrics.ts counts them). */
  readonly httpRequests: Counter<"method" | "route" | "status">;
  readonly httpDuration: Histogram<"method" | "route">;
  /** Bids by outcome: `accepted` or the error code of the rejection. */
  readonly bids: Counter<"outcome">;
  /** Items per group-committed write, by writer (bids, job_marks). */
  readonly commitBatch: Histogram<"writer">;
  /** Each group-committed write's time, by writer: what an accepted bid or proof mark waits on. */
  readonly commitWrite: Histogram<"writer">;
  readonly leasesGranted: Counter<"job_type">;
  /** Lapsed leases: penalized (withholding) or forgiven (no relay could take heartbeats). */
  readonly leasesLapsed: Counter<"outcome">;
  /** Lease records that came after their job's row had moved on, and were not written. */
  readonly leaseRecordsLate: Counter;
  /** Lease attempts whose turn (LEASE_CONCURRENCY) did not come by their deadline. */
  readonly leaseGateGaveUp: Counter;
  readonly timeToLease: Histogram<"job_type">;
  readonly proofTime: Histogram<"job_type">;
  readonly proofsVerified: Counter<"job_type">;
  readonly proofsRejected: Counter<"reason">;
  readonly penalties: Counter<"kind">;
  readonly penaltyGwei: Counter<"kind">;
  readonly jobSteps: Histogram<"step">;
  /** Where a parent job became ready in this process (its last child completed here), ms. */
  private readonly readyAt = new Map<string, number>();
  private cached: { at: number; read: Promise<ScrapeRead | null> } | null = null;

  constructor(
    private source: RelayGaugeSource | null = null,
    private readonly now: () => number = Date.now,
  ) {
    const registers = [this.registry];
    collectDefaultMetrics({ register: this.registry, prefix: "prover_boost_relay_" });
    this.httpRequests = new Counter({
      name: "prover_boost_http_requests_total",
      help: "HTTP requests by route and status",
      labelNames: ["method", "route", "status"],
      registers,
    });
    this.httpDuration = new Histogram({
      name: "prover_boost_http_request_duration_seconds",
      help: "HTTP request duration by route",
      labelNames: ["method", "route"],
      buckets: [0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 5, 30],
      registers,
    });
    this.bids = new Counter({
      name: "prover_boost_bids_total",
      help: "Bids submitted, by outcome: accepted, or the error code they were rejected with",
      labelNames: ["outcome"],
      registers,
    });
    this.commitBatch = new Histogram({
      name: "prover_boost_group_commit_batch_size",
      help: "Items written per group-committed database write, by writer (bids, job_marks)",
      labelNames: ["writer"],
      buckets: [1, 2, 4, 8, 16, 32, 64, 128, 256, 512],
      registers,
    });
    this.commitWrite = new Histogram({
      name: "prover_boost_group_commit_write_seconds",
      help: "Time of each group-committed database write, from its start to its items' results, by writer (bids, job_marks)",
      labelNames: ["writer"],
      buckets: stepBuckets,
      registers,
    });
    this.leasesGranted = new Counter({
      name: "prover_boost_leases_granted_total",
      help: "Jobs leased to workers, by job type",
      labelNames: ["job_type"],
      registers,
    });
    this.leasesLapsed = new Counter({
      name: "prover_boost_leases_lapsed_total",
      help: "Leases that lapsed without a result: penalized (withholding) or forgiven",
      labelNames: ["outcome"],
      registers,
    });
    this.leaseRecordsLate = new Counter({
      name: "prover_boost_lease_records_late_total",
      help: "Lease records (written after the lease's answer) that reached the job's row after it had moved on (the lease ended, a newer lease recorded, the job proven or failed) and were not written",
      registers,
    });
    this.leaseGateGaveUp = new Counter({
      name: "prover_boost_lease_gate_gave_up_total",
      help: "Lease attempts whose turn (LEASE_CONCURRENCY at once) did not come by their request's deadline (at least 5 s): they looked at nothing and found no job",
      registers,
    });
    this.timeToLease = new Histogram({
      name: "prover_boost_time_to_lease_seconds",
      help: "From a job becoming ready (added, made ready by its last child, or given back) to its lease, by job type",
      labelNames: ["job_type"],
      buckets: waitBuckets,
      registers,
    });
    this.proofTime = new Histogram({
      name: "prover_boost_proof_time_seconds",
      help: "From a job's lease to its accepted proof, by job type",
      labelNames: ["job_type"],
      buckets: waitBuckets,
      registers,
    });
    this.proofsVerified = new Counter({
      name: "prover_boost_proofs_verified_total",
      help: "Proofs that verified and were credited, by job type",
      labelNames: ["job_type"],
      registers,
    });
    this.proofsRejected = new Counter({
      name: "prover_boost_proofs_rejected_total",
      help: "Submitted proofs not credited, by reason (invalid_proof, lease_lost)",
      labelNames: ["reason"],
      registers,
    });
    this.penalties = new Counter({
      name: "prover_boost_penalties_total",
      help: "Penalties recorded, by kind (invalid_proof, withholding here; slash by the aggregator)",
      labelNames: ["kind"],
      registers,
    });
    this.penaltyGwei = new Counter({
      name: "prover_boost_penalty_gwei_total",
      help: "Collateral taken by penalties in gwei, by kind (a float view; the ledger keeps exact wei)",
      labelNames: ["kind"],
      registers,
    });
    this.jobSteps = new Histogram({
      name: "prover_boost_job_step_seconds",
      help: "Time of each step of handing a job in and out, by step: verify, complete (Redis) and proof_mark (Postgres) of a result; gate (the wait for a lease attempt's turn), take (Redis) and lease_mark (Postgres, after the answer) of a granted lease",
      labelNames: ["step"],
      buckets: stepBuckets,
      registers,
    });
    const self = this;
    new Gauge({
      name: "prover_boost_group_commit_waiting",
      help: "Items waiting for a group-committed write, by writer (bids, job_marks)",
      labelNames: ["writer"],
      registers,
      collect() {
        for (const [writer, n] of self.waitingBy) this.set({ writer }, n());
      },
    });
    new Counter({
      name: "prover_boost_queue_pops_total",
      help: "Pops of the block queues for this relay's lessees, by outcome: job (it brought one) or empty (another lessee or relay took the job between the look and the pop)",
      labelNames: ["outcome"],
      registers,
      collect() {
        const pops = self.popsOf?.();
        if (!pops) return;
        this.reset();
        this.inc({ outcome: "job" }, pops.job);
        this.inc({ outcome: "empty" }, pops.empty);
      },
    });
    new Gauge({
      name: "prover_boost_queue_jobs",
      help: "Jobs of the blocks being proven, by queue kind (base, merge, root), job type and BullMQ state",
      labelNames: ["kind", "type", "state"],
      registers,
      async collect() {
        this.reset();
        const read = await self.scrape();
        for (const d of read?.depth ?? []) {
          this.set({ kind: d.kind, type: d.type, state: d.state }, d.jobs);
        }
      },
    });
    new Gauge({
      name: "prover_boost_leases_live",
      help: "Jobs leased right now (active in BullMQ) over the blocks being proven",
      registers,
      async collect() {
        const read = await self.scrape();
        if (!read) return this.reset();
        this.set(read.depth.filter((d) => d.state === "active").reduce((s, d) => s + d.jobs, 0));
      },
    });
    new Gauge({
      name: "prover_boost_workers_online",
      help: "Worker sessions signed in and not expired",
      registers,
      async collect() {
        const read = await self.scrape();
        if (!read) return this.reset();
        this.set(read.workers);
      },
    });
    // Every job type present from the first scrape, so rates and dashboards see zeros, not gaps.
    for (const t of jobTypes) {
      this.leasesGranted.inc({ job_type: t }, 0);
      this.proofsVerified.inc({ job_type: t }, 0);
    }
    this.bids.inc({ outcome: "accepted" }, 0);
  }

  private readonly waitingBy = new Map<string, () => number>();
  private popsOf: (() => PopCount) | undefined;

  /** A group-commit writer's waiting items, read at scrape. */
  watchWaiting(writer: string, waiting: () => number): void {
    this.waitingBy.set(writer, waiting);
  }

  /** The fabric's count of its pops by outcome, read at scrape. */
  watchPops(read: () => PopCount): void {
    this.popsOf = read;
  }

  /** Wires the scrape-time reads (the relay builds the metrics before what they read). */
  setSource(source: RelayGaugeSource): void {
    this.source = source;
  }

  /**
   * The scrape-time reads, or null when they failed (Redis or Postgres down): the gauges are
   * then left out of that scrape, while everything else is still served, and the failure is not
   * cached, so the next scrape tries again.
   */
  private scrape(): Promise<ScrapeRead | null> {
    const now = this.now();
    if (this.cached && now - this.cached.at < SCRAPE_CACHE_MS) return this.cached.read;
    const source = this.source;
    const read: Promise<ScrapeRead | null> = (
      source
        ? Promise.all([source.queueDepth(), source.workersOnline()]).then(([depth, workers]) => ({
            depth,
            workers,
          }))
        : Promise.resolve({ depth: [], workers: 0 })
    ).catch(() => {
      if (this.cached?.read === read) this.cached = null;
      return null;
    });
    this.cached = { at: now, read };
    return read;
  }

  /** A parent became ready here (its last child's completion announced it). */
  noteReady(jobId: string, atMs: number): void {
    // Bounded: an entry whose lease happened on another relay is never taken here.
    if (this.readyAt.size >= 100_000) this.readyAt.clear();
    this.readyAt.set(jobId, atMs);
  }

  /** A lease granted: counts it and, when its ready time is known, its wait. */
  leased(jobId: string, type: JobType, leasedAtMs: number, addedAtMs: number, isLeaf: boolean) {
    this.leasesGranted.inc({ job_type: type });
    const ready = this.readyAt.get(jobId) ?? (isLeaf ? addedAtMs : undefined);
    this.readyAt.delete(jobId);
    if (ready !== undefined) {
      this.timeToLease.observe({ job_type: type }, Math.max(0, leasedAtMs - ready) / 1000);
    }
  }

  /** A step that began at `startedAt` and ended at `endedAt` (performance.now(), default now). */
  stepDone(step: JobStep, startedAt: number, endedAt = performance.now()): void {
    this.jobSteps.observe({ step }, (endedAt - startedAt) / 1000);
  }

  penalized(kind: string, wei: bigint): void {
    this.penalties.inc({ kind });
    if (wei > 0n) this.penaltyGwei.inc({ kind }, weiToGwei(wei));
  }
}

interface ScrapeRead {
  depth: QueueDepth[];
  workers: number;
}
