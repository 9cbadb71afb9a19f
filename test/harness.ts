// Integration-test stack: a relay (listening on a free loopback port) and an aggregator against
// a real Redis and a real Postgres, or the embedded PGlite. Each stack gets its own Postgres
// schema (or PGlite directory) and Redis key prefix, removed on close, so runs never collide.
import { randomBytes } from "node:crypto";
import { mkdtemp, rm } from "node:fs/promises";
import { tmpdir } from "node:os";
import path from "node:path";
import { createAggregator } from "@prover-boost/aggregator";
import { aggregatorEnv, parseEnv, relayEnv } from "@prover-boost/config";
import { type Database, openDatabase } from "@prover-boost/db";
import { deleteKeysWithPrefix, sightBrokers } from "@prover-boost/queue";
import { createRelay, type Relay } from "@prover-boost/relay";
import { RelayClient } from "@prover-boost/sdk";
import { Redis } from "ioredis";
import pg from "pg";
import { privateKeyToAccount } from "viem/accounts";
import { testDomainEnv } from "./support/domain.ts";
import { type FaultProxy, startFaultProxy } from "./support/fault-proxy.ts";

export const TEST_DATABASE_URL =
  process.env.TEST_DATABASE_URL ?? "postgresql://postgres@127.0.0.1:5432/test";
export const TEST_REDIS_URL = process.env.TEST_REDIS_URL ?? "redis://127.0.0.1:6379";

export type Backend = "postgres" | "pglite";

export const sequencerKey = `0x${"5e".repeat(32)}` as const;
export const sequencer = privateKeyToAccount(sequencerKey);
export const ADMIN_TOKEN = "test-admin-token-0123456789";

export interface StackOptions {
  backend?: Backend;
  env?: Record<string, string>;
  /** Start the aggregator loop (default true). */
  aggregator?: boolean;
  /** The module the relay's verifying threads run (default: the proof systems' own). */
  proofThreadFile?: string;
  /**
   * Postgres only: the relay reaches the database through a fault proxy (`Stack.relayDatabase`)
   * on its own connections, while the aggregator and the test keep theirs.
   */
  relayDatabaseLink?: boolean;
}

export interface Stack {
  backend: Backend;
  url: string;
  relay: Relay;
  db: Database;
  aggregator: Awaited<ReturnType<typeof createAggregator>>;
  client: RelayClient;
  admin: RelayClient;
  prefix: string;
  /** The Postgres schema (postgres backend only). */
  schema: string | undefined;
  /** The environment the relay and aggregator were built from (for a service process beside them). */
  env: Readonly<Record<string, string>>;
  /** With `relayDatabaseLink`: the relay's link to Postgres, to stall or cut. */
  relayDatabase: FaultProxy | undefined;
  close(): Promise<void>;
}

export async function startStack(options: StackOptions = {}): Promise<Stack> {
  const backend = options.backend ?? "postgres";
  const id = randomBytes(5).toString("hex");
  const prefix = `pbtest-${id}`;
  const schema = `t_${id}`;
  let dataDir: string | undefined;
  if (backend === "pglite") dataDir = await mkdtemp(path.join(tmpdir(), "pb-pglite-"));
  const base: Record<string, string> = {
    REDIS_URL: TEST_REDIS_URL,
    REDIS_PREFIX: prefix,
    SEQUENCERS: sequencer.address,
    ADMIN_TOKEN,
    PORT: "0",
    LEASE_MS: "2000",
    AGGREGATOR_TICK_MS: "50",
    // Tests run short auctions; the production default window (60 s) is tested on its own.
    MIN_PROVING_WINDOW_MS: "0",
    // Most tests prove open blocks with operators that never deposited; the open-proving
    // collateral and the invalid-proof penalty have their own tests.
    OPEN_PROVING_MIN_COLLATERAL: "0",
    INVALID_PROOF_PENALTY_WEI: "0",
    // Signatures bound to the test deployment (test/support/domain.ts); the fixtures sign on it.
    ...testDomainEnv,
    // Many tests sign many workers in for one operator; the sign-in limit has its own test.
    SIGNIN_RATE_LIMIT_PER_OPERATOR: "0",
    // A test process runs the relay beside everything else; load shedding has its own test.
    OVERLOAD_LAG_MS: "0",
    ...(backend === "postgres" ? { DATABASE_URL: TEST_DATABASE_URL } : { DATA_DIR: dataDir! }),
    ...options.env,
  };
  const db = await openDatabase({
    databaseUrl: backend === "postgres" ? TEST_DATABASE_URL : undefined,
    dataDir,
    schema: backend === "postgres" ? schema : undefined,
  });
  // The relay's own connections through the proxy, once `db` has migrated the schema.
  const relayDatabase =
    options.relayDatabaseLink && backend === "postgres"
      ? await startFaultProxy(TEST_DATABASE_URL)
      : undefined;
  const relayDb = relayDatabase
    ? await openDatabase({
        databaseUrl: relayDatabase.url,
        schema,
        connectTimeoutMs: 1000,
        queryTimeoutMs: 1500,
      })
    : db;
  const relay = await createRelay(parseEnv(relayEnv, base), {
    db: relayDb,
    ...(options.proofThreadFile ? { proofThreadFile: options.proofThreadFile } : {}),
  });
  await relay.listen(0, "127.0.0.1");
  // Until its first presence refresh, no relay has been seen able to serve, and no proof deadline
  // is judged (deadlines.ts): tests that move the aggregator's clock past one at once wait for it.
  await eventually(
    async () => (await sightBrokers(relay.ctx.fabric.redis, prefix)).servingAt !== null,
    10_000,
    20,
  );
  const address = relay.app.server.address();
  const url = `http://127.0.0.1:${typeof address === "object" && address ? address.port : 0}`;
  const aggregator = await createAggregator(parseEnv(aggregatorEnv, base), { db });
  if (options.aggregator !== false) aggregator.aggregator.start();
  return {
    backend,
    url,
    relay,
    db,
    aggregator,
    prefix,
    schema: backend === "postgres" ? schema : undefined,
    env: base,
    relayDatabase,
    client: new RelayClient({ baseUrl: url }),
    admin: new RelayClient({ baseUrl: url, adminToken: ADMIN_TOKEN }),
    async close() {
      await aggregator.close();
      await relay.close();
      if (relayDatabase) {
        relayDatabase.restore();
        await relayDb.close();
        await relayDatabase.close();
      }
      // After every BullMQ handle is closed, so nothing re-creates keys under the prefix.
      const redis = new Redis(TEST_REDIS_URL);
      await deleteKeysWithPrefix(redis, prefix);
      redis.disconnect();
      await db.close();
      if (backend === "postgres") {
        const client = new pg.Client({ connectionString: TEST_DATABASE_URL });
        await client.connect();
        await client.query(`DROP SCHEMA IF EXISTS "${schema}" CASCADE`);
        await client.end();
      }
      if (dataDir) await rm(dataDir, { recursive: true, force: true });
    },
  };
}

/** Polls `fn` until it returns a truthy value or `timeoutMs` passes (then throws). */
export async function eventually<T>(
  fn: () => Promise<T | null | undefined | false>,
  timeoutMs = 20_000,
  stepMs = 50,
): Promise<T> {
  const until = Date.now() + timeoutMs;
  let last: unknown;
  for (;;) {
    try {
      const v = await fn();
      if (v) return v;
    } catch (err) {
      last = err;
    }
    if (Date.now() > until)
      throw new Error(`condition not met within ${timeoutMs} ms${last ? `: ${String(last)}` : ""}`);
    await new Promise((r) => setTimeout(r, stepMs));
  }
}
