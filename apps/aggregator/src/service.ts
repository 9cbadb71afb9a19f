// Wiring for the aggregator: database, fabric (publisher only), the loop.
//
// The aggregator opens a block's queues to fan its tree out, count and reconcile its jobs, and
// closes them when it retires the block after payout. A block that leaves proving some other way
// (paid before a restart, or by another aggregator) would keep them open, so a slow sweep closes
// the handles of blocks that are no longer being proven. And a crash between a payout and its
// retire would leave the block's queues in Redis for good, so at start-up the aggregator retires
// every paid block that still has queues.
import { escrowMismatches, Settler, type SettlerOptions } from "@prover-boost/chain";
import {
  type AggregatorEnv,
  boundDomainFromEnv,
  ConfigError,
  settlerKeyFromEnv,
} from "@prover-boost/config";
import { PROVING_STAGES, STAGE } from "@prover-boost/core";
import { type Database, openDatabaseFromEnv, type Prisma } from "@prover-boost/db";
import { ProofFabric } from "@prover-boost/queue";
import { createPublicClient, createWalletClient, http } from "viem";
import { privateKeyToAccount } from "viem/accounts";
import { Aggregator } from "./aggregator.ts";
import { aggregatorConfigOf } from "./config.ts";
import type { AggregatorContext } from "./context.ts";
import { AggregatorMetrics } from "./metrics.ts";
import type { PayoutHooks } from "./payouts.ts";

/** How often an aggregator looks for paid blocks whose trees are still in Redis. */
export const RETIRE_LEFTOVERS_EVERY_MS = 10 * 60_000;

export interface AggregatorService {
  aggregator: Aggregator;
  ctx: AggregatorContext;
  /** COLLATERAL=chain: sends the settlements the duties owe the escrow (null in ledger mode). */
  settler: Settler | null;
  close(): Promise<void>;
}

export async function createAggregator(
  env: AggregatorEnv,
  deps: {
    db?: Database;
    schema?: string;
    log?: AggregatorContext["log"];
    now?: () => number;
    hooks?: PayoutHooks;
    /** Test hook of the settler (a crash between recording and broadcasting). */
    beforeBroadcast?: SettlerOptions["beforeBroadcast"];
    /** How often paid and expired blocks left in Redis are looked for; default RETIRE_LEFTOVERS_EVERY_MS. */
    retireLeftoversEveryMs?: number;
  } = {},
): Promise<AggregatorService> {
  const silent = { info() {}, warn() {}, error() {} };
  const log = deps.log ?? silent;
  // Same domain rule as the relay: it refuses to start unbound unless the legacy domain is chosen.
  boundDomainFromEnv(env, (message) => (deps.log ? log.warn({}, message) : console.warn(message)));
  const ownDb = !deps.db;
  const db = deps.db ?? (await openDatabaseFromEnv(env, { schema: deps.schema }));
  const fabric = await ProofFabric.open({
    redisUrl: env.REDIS_URL,
    prefix: env.REDIS_PREFIX,
    leaseMs: env.LEASE_MS,
    commandTimeoutMs: env.REDIS_COMMAND_TIMEOUT_MS,
    checkStalled: false,
    subscribe: false,
  });
  const now = deps.now ?? Date.now;
  const metrics = new AggregatorMetrics(now);
  metrics.setStageSource(async () =>
    (await db.prisma.block.groupBy({ by: ["stage"], _count: { _all: true } })).map((g) => ({
      stage: g.stage,
      blocks: g._count._all,
    })),
  );
  const ctx: AggregatorContext = {
    config: aggregatorConfigOf(env),
    prisma: db.prisma,
    fabric,
    now,
    metrics,
    log,
  };
  const settler = settlerOf(env, db.prisma, ctx, deps.beforeBroadcast);
  if (settler) {
    // Refuse to start against an escrow this settler cannot drive or whose slash split differs;
    // an L1 that does not answer yet is only a warning (the settler retries once it does).
    const mismatches = await escrowMismatches(settler.client, env.ESCROW_ADDRESS!, {
      settler: settler.address,
      slashToSequencerBps: env.SLASH_TO_SEQUENCER_BPS,
    }).catch((err) => {
      ctx.log.warn({ err }, "could not read the escrow's settler and slash split");
      return [] as string[];
    });
    if (mismatches.length > 0) {
      await fabric.close();
      if (ownDb) await db.close();
      throw new ConfigError(`invalid configuration:\n  ${mismatches.join("\n  ")}`);
    }
  }
  const aggregator = new Aggregator(ctx, deps.hooks, settler);
  // At start (a process stopped before retiring them), and now and then after: a payout's own
  // retire that failed (Redis away at that moment) would otherwise leave the block's tree in
  // Redis until the next restart, and a long run would fill it.
  const retireLeftovers = () =>
    void retireFinishedLeftovers(db.prisma, fabric).catch((err) =>
      ctx.log.warn({ err }, "could not retire paid or expired blocks left in Redis"),
    );
  retireLeftovers();
  const retiring = setInterval(
    retireLeftovers,
    deps.retireLeftoversEveryMs ?? RETIRE_LEFTOVERS_EVERY_MS,
  );
  retiring.unref();
  const sweep = setInterval(
    () => void closeInactiveHandles(db.prisma, fabric).catch(() => {}),
    1000,
  );
  sweep.unref();
  return {
    aggregator,
    ctx,
    settler,
    async close() {
      clearInterval(sweep);
      clearInterval(retiring);
      await aggregator.stop();
      await fabric.close();
      if (ownDb) await db.close();
    },
  };
}

/** Closes the fabric's handles on blocks that are not being proven any more. */
async function closeInactiveHandles(prisma: Prisma, fabric: ProofFabric): Promise<void> {
  const open = fabric.openHandles().blocks;
  if (open.length === 0) return;
  const startedAt = performance.now();
  const rows = await prisma.block.findMany({
    where: { number: { in: open }, stage: { in: [...PROVING_STAGES, STAGE.proven] } },
    select: { number: true },
  });
  await fabric.closeInactive(new Set(rows.map((r) => r.number)), startedAt);
}

/**
 * Retires paid and expired blocks whose queues (or seal) are still in Redis (the process stopped
 * before retiring them).
 */
async function retireFinishedLeftovers(prisma: Prisma, fabric: ProofFabric): Promise<number[]> {
  const stored = [
    ...new Set([...(await fabric.blocksInRedis()), ...(await fabric.sealedBlocks())]),
  ];
  if (stored.length === 0) return [];
  const done = await prisma.block.findMany({
    where: { number: { in: stored }, stage: { in: [STAGE.paid, STAGE.expired] } },
    select: { number: true },
  });
  for (const { number } of done) await fabric.retireBlock(number);
  return done.map((b) => b.number);
}

/** COLLATERAL=chain: the settler over L1_RPC_URL with the settler key; null in ledger mode. */
function settlerOf(
  env: AggregatorEnv,
  prisma: Prisma,
  ctx: AggregatorContext,
  beforeBroadcast: SettlerOptions["beforeBroadcast"],
): Settler | null {
  const key = settlerKeyFromEnv(env);
  if (!key) return null;
  const transport = http(env.L1_RPC_URL, { timeout: 10_000, retryCount: 0 });
  return new Settler({
    prisma,
    client: createPublicClient({ transport }),
    wallet: createWalletClient({ account: privateKeyToAccount(key), transport }),
    escrow: env.ESCROW_ADDRESS!,
    retry: { baseMs: env.SETTLER_RETRY_BASE_MS, maxMs: env.SETTLER_RETRY_MAX_MS },
    confirmations: env.L1_CONFIRMATIONS,
    logRange: env.L1_LOG_RANGE,
    startBlock: BigInt(env.L1_START_BLOCK),
    maxReorgDepth: env.L1_MAX_REORG_DEPTH,
    feeBumpAfterMs: env.SETTLER_FEE_BUMP_AFTER_MS,
    ...(env.SETTLER_MAX_FEE_PER_GAS_WEI > 0n
      ? { maxFeePerGas: env.SETTLER_MAX_FEE_PER_GAS_WEI }
      : {}),
    now: ctx.now,
    log: ctx.log,
    ...(beforeBroadcast ? { beforeBroadcast } : {}),
  });
}
