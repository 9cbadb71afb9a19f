// Wiring: open the database and the fabric, build the context and the app. Used by server.ts
// (a real deployment), the devnet (in-process) and the integration tests.

import { EscrowIndexer } from "@prover-boost/chain";
import { boundDomainFromEnv, type RelayEnv } from "@prover-boost/config";
import { rootJobType } from "@prover-boost/core";
import {
  type Database,
  type JobMark,
  openDatabaseFromEnv,
  postgresProofStore,
  writeJobMarks,
} from "@prover-boost/db";
import { LesseeWakeups, ProofBroker, ProofFabric, type QueueKind } from "@prover-boost/queue";
import type { FastifyBaseLogger, FastifyInstance } from "fastify";
import pLimit from "p-limit";
import { createPublicClient, http } from "viem";
import { buildApp } from "./app.ts";
import type { RelayContext } from "./context.ts";
import { type QueueDepth, type RelayGaugeSource, RelayMetrics } from "./domain-metrics.ts";
import { isUnavailable } from "./errors.ts";
import { writeBidBatch } from "./services/bids.ts";
import { EventHub } from "./services/event-hub.ts";
import { onLeaseLapsed } from "./services/gateway.ts";
import { GroupCommit, LanedGroupCommit } from "./services/group-commit.ts";
import { LeaseMarks } from "./services/lease-marks.ts";
import { AcceptLag, Arrivals, LoopLag, sweepGateOf } from "./services/load.ts";
import { ProofVerifiers } from "./services/proof-check.ts";
import {
  BlockRegistry,
  closeHandlesOfInactiveBlocks,
  openHandlesOfActiveBlocks,
} from "./services/registry.ts";
import { TxDataReader } from "./services/tx-data.ts";
import { relaySettingsOf } from "./settings.ts";

/** Longest wait between two reads of the event log when no work announcement comes. */
const EVENT_POLL_MS = 500;

export interface Relay {
  app: FastifyInstance;
  ctx: RelayContext;
  /** The environment it was built from (to start another relay like it). */
  env: RelayEnv;
  /** Serves on `port` (0: any free one) and `host`, with the LISTEN_BACKLOG queue; the address. */
  listen(port: number, host: string): Promise<string>;
  close(): Promise<void>;
}

export interface RelayDeps {
  /** Reuse an open database (the devnet shares one PGlite between services). */
  db?: Database;
  /** Postgres schema override (tests). */
  schema?: string;
  logger?: FastifyBaseLogger | boolean;
  now?: () => number;
  /** The module the relay's verifying threads run (tests; default: the proof systems' own). */
  proofThreadFile?: string;
}

/** COLLATERAL=chain: the escrow indexer over L1_RPC_URL (null in ledger mode). */
function escrowIndexOf(
  env: RelayEnv,
  db: Database,
  now: () => number,
  log: () => FastifyBaseLogger,
): EscrowIndexer | null {
  if (env.COLLATERAL !== "chain") return null;
  const client = createPublicClient({
    transport: http(env.L1_RPC_URL, { timeout: 5000, retryCount: 0 }),
  });
  return new EscrowIndexer({
    prisma: db.prisma,
    client,
    escrow: env.ESCROW_ADDRESS!,
    confirmations: env.L1_CONFIRMATIONS,
    logRange: env.L1_LOG_RANGE,
    startBlock: BigInt(env.L1_START_BLOCK),
    maxReorgDepth: env.L1_MAX_REORG_DEPTH,
    staleMs: env.L1_STALE_MS,
    pollMs: env.L1_POLL_MS,
    now,
    log: {
      info: (o, m) => log().info(o, m),
      warn: (o, m) => log().warn(o, m),
      error: (o, m) => log().error(o, m),
    },
  });
}

export async function createRelay(env: RelayEnv, deps: RelayDeps = {}): Promise<Relay> {
  // Refuses to start unbound (no CHAIN_ID/VERIFYING_CONTRACT) unless the legacy domain is chosen.
  const domain = boundDomainFromEnv(env, (message) => {
    if (typeof deps.logger === "object") deps.logger.warn(message);
    else console.warn(message);
  });
  const ownDb = !deps.db;
  const db = deps.db ?? (await openDatabaseFromEnv(env, { schema: deps.schema }));
  // The relay's own lateness is measured, and lapse sweeps wait for it (services/load.ts): a
  // sweep whose timer fired more than a sweep period late is put off (for at most LEASE_MS), and
  // one that finds a connection waiting to be accepted (AcceptLag, once listening) for at most
  // twice that.
  const lag = new LoopLag();
  const accepts = new AcceptLag();
  lag.watchAccepts(accepts);
  const arrivals = new Arrivals(lag);
  const sweepMs = Math.min(Math.floor(env.LEASE_MS / 8), 250);
  const fabric = await ProofFabric.open({
    redisUrl: env.REDIS_URL,
    prefix: env.REDIS_PREFIX,
    leaseMs: env.LEASE_MS,
    commandTimeoutMs: env.REDIS_COMMAND_TIMEOUT_MS,
    sweepGate: sweepGateOf(arrivals, Math.max(sweepMs, 50), env.LEASE_MS, accepts),
  });
  const now = deps.now ?? Date.now;
  const metrics = new RelayMetrics();
  const escrowIndex = escrowIndexOf(env, db, now, () => app.log);
  const jobMarks = new GroupCommit(
    (marks: JobMark[]) => writeJobMarks(db.prisma, marks, ctx.now()),
    {
      maxBatch: 256,
      maxInFlight: 2,
      onBatch: (n) => metrics.commitBatch.observe({ writer: "job_marks" }, n),
      onWritten: (ms) => metrics.commitWrite.observe({ writer: "job_marks" }, ms / 1000),
    },
  );
  const ctx: RelayContext = {
    settings: relaySettingsOf(env),
    escrowIndex,
    db,
    prisma: db.prisma,
    fabric,
    broker: new ProofBroker(fabric, {
      leaseMs: env.LEASE_MS,
      leaseMaxMs: env.LEASE_MAX_MS,
      maxRetryableFailsPerAgent: env.MAX_RETRYABLE_FAILS_PER_WORKER,
      maxJobFailsPerOperator: env.MAX_JOB_FAILS_PER_OPERATOR,
      maxJobAttempts: env.MAX_JOB_ATTEMPTS,
      // Behind (the loop's worst delay of the last second past OVERLOAD_LAG_MS), this relay
      // cannot hear heartbeats on time: a lapse in that time is not the worker's (presence.ts).
      behind: () => env.OVERLOAD_LAG_MS > 0 && lag.recentMs() > env.OVERLOAD_LAG_MS,
    }),
    registry: new BlockRegistry(db.prisma),
    wakeups: new LesseeWakeups(fabric.events),
    domain,
    clock: { genesisTimeMs: env.GENESIS_TIME_MS, slotDurationMs: env.SLOT_DURATION_MS },
    signatureBackend: env.SIGNATURE_BACKEND === "auto" ? undefined : env.SIGNATURE_BACKEND,
    now,
    bidIngest: {
      terms: new Map(),
      batcher: new LanedGroupCommit(
        (batch) => writeBidBatch(ctx, batch),
        (bid) => bid.quote.prover.toLowerCase(),
        {
          maxBatch: env.BID_BATCH_MAX,
          lanes: env.BID_WRITES_IN_FLIGHT,
          minIntervalMs: env.BID_WRITE_INTERVAL_MS,
          onBatch: (n) => metrics.commitBatch.observe({ writer: "bids" }, n),
          onWritten: (ms) => metrics.commitWrite.observe({ writer: "bids" }, ms / 1000),
          // A stalled database fails the whole write at once, not once per bid after its timeout.
          failsAll: isUnavailable,
        },
      ),
    },
    jobMarks,
    leaseMarks: new LeaseMarks(jobMarks, {
      written: (sentAt, applied) => {
        metrics.stepDone("lease_mark", sentAt);
        if (!applied) metrics.leaseRecordsLate.inc();
      },
      failed: (jobId, err) => app.log.warn({ err, jobId }, "a lease's record was not written"),
    }),
    txData: new TxDataReader(db.prisma),
    verifiers: new ProofVerifiers({
      verifyThreads: env.PROOF_VERIFY_THREADS,
      verifyTimeoutMs: env.PROOF_VERIFY_TIMEOUT_MS,
      ...(deps.proofThreadFile ? { threadFile: deps.proofThreadFile } : {}),
    }),
    proofStore: postgresProofStore(db.prisma),
    events: new EventHub(db.prisma, {
      pollMs: EVENT_POLL_MS,
      retentionMs: env.EVENTS_RETENTION_MS,
      now,
      wait: (ms, signal) => fabric.waitForWork(ms, signal),
    }),
    metrics,
    load: { lag, arrivals },
    leaseGate: pLimit(env.LEASE_CONCURRENCY),
  };
  lag.start();
  metrics.watchWaiting("bids", () => ctx.bidIngest.batcher.waiting);
  metrics.watchWaiting("job_marks", () => ctx.jobMarks.waiting);
  metrics.watchPops(() => fabric.pops);
  metrics.setSource(relayGaugeSource(ctx));
  fabric.events.on("ready", (jobId: string) => metrics.noteReady(jobId, ctx.now()));
  // Another process started or finished proving a block: look again at once, not after the TTL.
  fabric.events.on("blocks", () => ctx.registry.invalidate());
  // A block about to be proven: its queues and fetchers connect now, not at its first lease.
  fabric.events.on("upcoming", (blockNumber: number, kinds: readonly QueueKind[]) => {
    fabric.prepareBlock(blockNumber, kinds).catch(() => {});
  });
  // Queues and fetchers of blocks that are no longer active are closed (registry.ts).
  const stopClosingHandles = closeHandlesOfInactiveBlocks(ctx.registry, fabric, ctx.now);
  // ...and opened on every active block, so each one's lapses are swept from the start.
  const stopOpeningHandles = openHandlesOfActiveBlocks(ctx.registry, fabric);
  fabric.events.on("stalled", (jobId: string) => {
    onLeaseLapsed(ctx, jobId).catch((err) =>
      app.log.warn({ err, jobId }, "lease lapse bookkeeping failed"),
    );
  });
  const app = await buildApp(ctx, {
    logger: deps.logger ?? false,
    bodyLimitBytes: env.BODY_LIMIT_BYTES,
    requestTimeoutMs: env.REQUEST_TIMEOUT_MS,
    trustProxy: env.TRUST_PROXY,
    limiterRedis: {
      url: env.REDIS_URL,
      prefix: env.REDIS_PREFIX,
      commandTimeoutMs: env.REDIS_COMMAND_TIMEOUT_MS,
    },
  });
  await app.ready();
  // A relay that cannot reach Postgres cannot serve the winner's workers: for proof deadlines it
  // is then not present (presence.ts). Pinged on a connection of its own, so a pool taken up by
  // load (anyone can send requests that query) does not make it look absent. Nor is it present
  // while it starts (until createRelay returns: an L1 pass may come first) or once it stops.
  let serving = false;
  ctx.broker.presence.followReadiness(
    async () => {
      if (!serving) throw new Error("the relay is not serving");
      await db.ping();
    },
    { readyYet: false },
  );
  // Present before serving: lapses are judged by which relays could take heartbeats.
  await ctx.broker.start();
  // A first pass before serving, so a relay on a healthy L1 takes bids at once.
  if (escrowIndex) {
    await escrowIndex.poll();
    escrowIndex.start();
  }
  serving = true;
  ctx.broker.presence.checkReadinessNow();
  return {
    app,
    ctx,
    env,
    async listen(port: number, host: string) {
      const url = await app.listen({ port, host, backlog: env.LISTEN_BACKLOG });
      accepts.start(app.server);
      return url;
    },
    async close() {
      // Not serving from here: its last sighting able to serve is now (presence.ts).
      serving = false;
      ctx.broker.presence.checkReadinessNow();
      stopClosingHandles();
      stopOpeningHandles();
      accepts.stop();
      lag.stop();
      await escrowIndex?.stop();
      ctx.events.close();
      await app.close();
      // Leases answered just before the close still have their records on the way.
      await ctx.leaseMarks.drained(5_000);
      await ctx.broker.close();
      await ctx.verifiers.close();
      await fabric.close();
      if (ownDb) await db.close();
    },
  };
}

/**
 * The scrape-time reads of the relay's gauges: queue depths over the blocks being proven, by
 * queue kind, job type and BullMQ state. BullMQ counts per queue; the base and merge queues hold
 * one job type each, and a block's root queue holds its one root job, whose type its transaction
 * count decides, so the per-type split costs no read beyond the counts.
 */
function relayGaugeSource(ctx: RelayContext): RelayGaugeSource {
  return {
    async queueDepth() {
      const blocks = await ctx.registry.active(ctx.now());
      const sums = new Map<string, QueueDepth>();
      const counted = await Promise.all(
        blocks.map(async (b) => ({ block: b, counts: await ctx.fabric.counts(b.number) })),
      );
      for (const { block, counts } of counted) {
        for (const [kind, states] of Object.entries(counts)) {
          const type = kind === "root" ? rootJobType(block.txCount) : kind;
          for (const [state, jobs] of Object.entries(states)) {
            const key = `${kind}/${type}/${state}`;
            const sum = sums.get(key) ?? { kind, type, state, jobs: 0 };
            sum.jobs += jobs;
            sums.set(key, sum);
          }
        }
      }
      return [...sums.values()];
    },
    workersOnline: () =>
      ctx.prisma.workerSession.count({ where: { expiresAt: { gt: BigInt(ctx.now()) } } }),
  };
}
