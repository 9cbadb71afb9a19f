// Wiring for the aggregator: database, fabric (publisher only), the loop.
import type { AggregatorEnv } from "@prover-boost/config";
import { type Database, openDatabaseFromEnv } from "@prover-boost/db";
import { ProofFabric } from "@prover-boost/queue";
import { Aggregator } from "./aggregator.ts";
import type { AggregatorContext } from "./context.ts";
import type { PayoutHooks } from "./payouts.ts";

export interface AggregatorService {
  aggregator: Aggregator;
  ctx: AggregatorContext;
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
  } = {},
): Promise<AggregatorService> {
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
  const silent = { info() {}, warn() {}, error() {} };
  const ctx: AggregatorContext = {
    env,
    prisma: db.prisma,
    fabric,
    now: deps.now ?? Date.now,
    log: deps.log ?? silent,
  };
  const aggregator = new Aggregator(ctx, deps.hooks);
  return {
    aggregator,
    ctx,
    async close() {
      await aggregator.stop();
      await fabric.close();
      if (ownDb) await db.close();
    },
  };
}
