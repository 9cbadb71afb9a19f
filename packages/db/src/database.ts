// Opens the database: Postgres when a URL is given, otherwise an embedded PGlite data directory.
// Migrations are applied from the same files in both cases before the client is handed out.
//
// Every Postgres wait has a deadline: getting a connection (from the pool, or a new one) and each
// query's reply, checked on the client side, so a server that stalls (accepts, never answers)
// fails a request with 503 instead of holding it and its pool slot forever. A connection that
// failed is dropped by the pool and a new one is made on demand, so service resumes by itself
// when the server is back.
import { mkdir } from "node:fs/promises";
import path from "node:path";
import { PGlite } from "@electric-sql/pglite";
import { PrismaPg } from "@prisma/adapter-pg";
import pg from "pg";
import { PrismaPGlite } from "pglite-prisma-adapter";
import { PrismaClient } from "./generated/client.ts";
import {
  applyMigrations,
  DEFAULT_MIGRATE_LOCK_TIMEOUT_MS,
  MigrationStalledError,
  type SqlRunner,
  withMigrationLock,
} from "./migrate.ts";

export type Prisma = PrismaClient;

export interface DatabaseOptions {
  /** Postgres connection string; when absent the embedded PGlite default is used. */
  databaseUrl?: string | undefined;
  /** PGlite data directory root (PGlite lives in `<dataDir>/pglite`). */
  dataDir?: string | undefined;
  /** Postgres schema to use (created if missing). Default: `schema` URL parameter, else public. */
  schema?: string | undefined;
  /** Pool size for Postgres. */
  poolSize?: number;
  /** Postgres: longest wait for a connection, pooled or new (DATABASE_CONNECT_TIMEOUT_MS). */
  connectTimeoutMs?: number | undefined;
  /** Postgres: longest wait for one query's reply (DATABASE_QUERY_TIMEOUT_MS). */
  queryTimeoutMs?: number | undefined;
  /** Postgres: longest wait for the schema's migration lock (DATABASE_MIGRATE_LOCK_TIMEOUT_MS). */
  migrateLockTimeoutMs?: number | undefined;
  /** Drop everything in the schema first (the devnet starts from genesis on every run). */
  reset?: boolean;
  /** Where the migrations are (default: the project's prisma/migrations). */
  migrationsDir?: string;
  /** Postgres: how often the database is pinged while it is migrated (see whileAnswering). */
  migratePingMs?: number;
}

export interface Database {
  prisma: PrismaClient;
  kind: "postgres" | "pglite";
  schema: string;
  /** Plain SQL access for health checks and schema management. */
  sql: SqlRunner;
  /**
   * A `SELECT 1` that does not wait behind the service's own queries: on Postgres it has a
   * connection of its own, so a pool taken up by load does not read as a database gone.
   */
  ping(): Promise<void>;
  close(): Promise<void>;
}

const schemaName = /^[a-z_][a-z0-9_]{0,62}$/;

/** Waiting for a pooled connection under load is normal; a stuck transaction is not. */
const transactionOptions = { maxWait: 10_000, timeout: 20_000 };

export const DEFAULT_DATABASE_CONNECT_TIMEOUT_MS = 5000;
export const DEFAULT_DATABASE_QUERY_TIMEOUT_MS = 15_000;
/** How often the database is pinged while it is migrated, and how many missed pings mean gone. */
export const DEFAULT_MIGRATE_PING_MS = 1000;
const MIGRATE_PINGS_MISSED = 2;
/** The least time a ping is given to answer, however short the query timeout. */
const MIGRATE_PING_DEADLINE_MIN_MS = 1000;

/**
 * The migration session's server-side deadlines (each where the server supports it): a session
 * left idle, or idle inside a transaction, by a client that is gone is ended after a minute;
 * keepalive probes find a silent peer in about 25 s; data sent and never acknowledged ends the
 * connection after 30 s. A migration sends its statements back to back, so none of these cuts
 * one short; a long statement runs on the server, where no idle time passes.
 */
const MIGRATION_SESSION_SETTINGS = [
  "idle_in_transaction_session_timeout = 60000",
  "idle_session_timeout = 60000",
  "tcp_keepalives_idle = 10",
  "tcp_keepalives_interval = 5",
  "tcp_keepalives_count = 3",
  "tcp_user_timeout = 30000",
];

/** Gives `p` at most `ms` (closing a connection that may never answer must not hang either). */
const atMost = (p: Promise<unknown>, ms: number) =>
  Promise.race([p.catch(() => {}), new Promise((r) => setTimeout(r, ms).unref())]);

/**
 * Runs `migrate` on the migration connection `client` while the database answers. That connection
 * has no query timeout (a migration may rightly take long), so a server that stalls, or a network
 * partition (which TCP notices on an open connection only after hours), would keep the process
 * waiting for ever. So every `ping.everyMs` a `SELECT 1` goes out on `pool` with a deadline (the
 * query timeout, DATABASE_QUERY_TIMEOUT_MS, but at least MIGRATE_PING_DEADLINE_MIN_MS); when
 * MIGRATE_PINGS_MISSED in a row get no answer, the migration connection's socket is destroyed
 * (its query fails; the migration's transaction never commits from this side) and this rejects
 * with MigrationStalledError.
 */
async function whileAnswering<T>(
  pool: pg.Pool,
  client: pg.Client,
  schema: string,
  ping: { everyMs: number; deadlineMs: number },
  migrate: () => Promise<T>,
): Promise<T> {
  let missed = 0;
  let silentSince: number | null = null;
  let pinging = false;
  /** The migration has ended: a ping still on its way decides nothing. */
  let over = false;
  let giveUp: (err: Error) => void = () => {};
  const gone = new Promise<never>((_, reject) => {
    giveUp = reject;
  });
  const timer = setInterval(() => {
    if (pinging) return;
    pinging = true;
    const sentAt = Date.now();
    // pg reads a per-query query_timeout, which its types do not declare.
    const query = { text: "SELECT 1", query_timeout: ping.deadlineMs } as pg.QueryConfig;
    const heard = () => {
      missed = 0;
      silentSince = null;
    };
    pool
      .query(query)
      .finally(() => {
        pinging = false;
      })
      .then(heard, (err: unknown) => {
        // An error the server sent (too many clients, shutting down) is an answer: it is there.
        if (err instanceof pg.DatabaseError) return heard();
        silentSince ??= sentAt;
        if (over || ++missed < MIGRATE_PINGS_MISSED) return;
        clearInterval(timer);
        (
          client as unknown as { connection: { stream: { destroy(): void } } }
        ).connection.stream.destroy();
        giveUp(new MigrationStalledError(schema, Date.now() - silentSince));
      });
  }, ping.everyMs);
  timer.unref();
  const run = migrate();
  run.catch(() => {});
  try {
    return await Promise.race([run, gone]);
  } finally {
    over = true;
    clearInterval(timer);
  }
}

function schemaFromUrl(url: string): { url: string; schema?: string } {
  const parsed = new URL(url);
  const schema = parsed.searchParams.get("schema") ?? undefined;
  parsed.searchParams.delete("schema");
  return { url: parsed.toString(), ...(schema ? { schema } : {}) };
}

export async function openDatabase(options: DatabaseOptions): Promise<Database> {
  if (options.databaseUrl) return openPostgres(options.databaseUrl, options);
  return openPglite(options.dataDir ?? ".prover-boost", options.reset === true, options);
}

/** The database a service's environment names (DATABASE_URL, else PGlite under DATA_DIR). */
export function openDatabaseFromEnv(
  env: {
    DATABASE_URL?: string | undefined;
    DATA_DIR: string;
    DATABASE_CONNECT_TIMEOUT_MS?: number;
    DATABASE_QUERY_TIMEOUT_MS?: number;
    DATABASE_MIGRATE_LOCK_TIMEOUT_MS?: number;
  },
  extra: Omit<DatabaseOptions, "databaseUrl" | "dataDir"> = {},
): Promise<Database> {
  return openDatabase({
    databaseUrl: env.DATABASE_URL,
    dataDir: env.DATA_DIR,
    connectTimeoutMs: env.DATABASE_CONNECT_TIMEOUT_MS,
    queryTimeoutMs: env.DATABASE_QUERY_TIMEOUT_MS,
    migrateLockTimeoutMs: env.DATABASE_MIGRATE_LOCK_TIMEOUT_MS,
    ...extra,
  });
}

const connectTimeoutOf = (options: DatabaseOptions) =>
  options.connectTimeoutMs ?? DEFAULT_DATABASE_CONNECT_TIMEOUT_MS;

async function openPostgres(databaseUrl: string, options: DatabaseOptions): Promise<Database> {
  const { url, schema: urlSchema } = schemaFromUrl(databaseUrl);
  const schema = options.schema ?? urlSchema ?? "public";
  if (!schemaName.test(schema)) throw new Error(`invalid Postgres schema name: ${schema}`);
  const pool = new pg.Pool({
    connectionString: url,
    max: options.poolSize ?? 10,
    options: `-c search_path="${schema}"`,
    connectionTimeoutMillis: connectTimeoutOf(options),
    query_timeout: options.queryTimeoutMs ?? DEFAULT_DATABASE_QUERY_TIMEOUT_MS,
    // Notices a peer that vanished without a reset while the connection sits idle.
    keepAlive: true,
  });
  pool.on("error", () => {});
  const sql: SqlRunner = {
    async exec(text) {
      await pool.query(text);
    },
    async query<T>(text: string, params?: unknown[]) {
      return (await pool.query(text, params)).rows as T[];
    },
  };
  // Migrations run on a connection of their own with no client-side query timeout: a migration
  // that outlasts DATABASE_QUERY_TIMEOUT_MS (an index built on a large table) would be given up
  // by the client while the server went on to commit it.
  const client = new pg.Client({
    connectionString: url,
    options: `-c search_path="${schema}"`,
    connectionTimeoutMillis: connectTimeoutOf(options),
    keepAlive: true,
  });
  client.on("error", () => {});
  try {
    await client.connect();
  } catch (err) {
    await atMost(pool.end(), connectTimeoutOf(options));
    throw err;
  }
  const session: SqlRunner = {
    exec: async (text) => void (await client.query(text)),
    query: async <T>(text: string, params?: unknown[]) =>
      (await client.query(text, params)).rows as T[],
  };
  try {
    await whileAnswering(
      pool,
      client,
      schema,
      {
        everyMs: options.migratePingMs ?? DEFAULT_MIGRATE_PING_MS,
        deadlineMs: Math.max(
          MIGRATE_PING_DEADLINE_MIN_MS,
          options.queryTimeoutMs ?? DEFAULT_DATABASE_QUERY_TIMEOUT_MS,
        ),
      },
      async () => {
        // A migration that waits for a table's lock (a service still using it) fails after the
        // migration lock's timeout, rolled back, instead of holding every query of that table
        // behind it.
        const lockWaitMs = options.migrateLockTimeoutMs ?? DEFAULT_MIGRATE_LOCK_TIMEOUT_MS;
        await client.query(`SET lock_timeout = ${Math.floor(lockWaitMs)}`).catch(() => {});
        // Should this side be cut off (it gives up, above), the server must not keep the session,
        // its migration lock and a migration's table locks for the hours TCP takes to notice: it
        // ends a session left waiting on this side (MIGRATION_SESSION_SETTINGS).
        for (const setting of MIGRATION_SESSION_SETTINGS) {
          await client.query(`SET ${setting}`).catch(() => {});
        }
        // Services starting together on a fresh database would race to create the schema and the
        // same tables; under the schema's lock one migrates and the others then find it done.
        await withMigrationLock(
          session,
          schema,
          async () => {
            if (options.reset) await client.query(`DROP SCHEMA IF EXISTS "${schema}" CASCADE`);
            await client.query(`CREATE SCHEMA IF NOT EXISTS "${schema}"`);
            await applyMigrations(session, options.migrationsDir);
          },
          lockWaitMs,
        );
      },
    );
  } catch (err) {
    await atMost(client.end(), connectTimeoutOf(options));
    await atMost(pool.end(), connectTimeoutOf(options));
    throw err;
  }
  await atMost(client.end(), connectTimeoutOf(options));
  const prisma = new PrismaClient({ adapter: new PrismaPg(pool, { schema }), transactionOptions });
  // One connection for pings alone, opened at the first (a dropped one is replaced).
  let pingPool: pg.Pool | null = null;
  return {
    prisma,
    kind: "postgres",
    schema,
    sql,
    async ping() {
      pingPool ??= new pg.Pool({
        connectionString: url,
        max: 1,
        connectionTimeoutMillis: connectTimeoutOf(options),
        query_timeout: options.queryTimeoutMs ?? DEFAULT_DATABASE_QUERY_TIMEOUT_MS,
        keepAlive: true,
      }).on("error", () => {});
      await pingPool.query("SELECT 1");
    },
    async close() {
      await prisma.$disconnect();
      await pool.end();
      if (pingPool) await atMost(pingPool.end(), connectTimeoutOf(options));
    },
  };
}

async function openPglite(
  dataDir: string,
  reset: boolean,
  options: Pick<DatabaseOptions, "migrationsDir"> = {},
): Promise<Database> {
  const dir = path.resolve(dataDir, "pglite");
  await mkdir(dir, { recursive: true });
  const lite = new PGlite(dir);
  await lite.waitReady;
  const sql: SqlRunner = {
    async exec(text) {
      await lite.exec(text);
    },
    async query<T>(text: string, params?: unknown[]) {
      return (await lite.query<T>(text, params)).rows;
    },
  };
  if (reset) await lite.exec("DROP SCHEMA IF EXISTS public CASCADE; CREATE SCHEMA public;");
  await applyMigrations(sql, options.migrationsDir);
  // pglite-prisma-adapter is typed against its own copy of Prisma's adapter interfaces; the
  // runtime contract is the same (checked by the integration tests on PGlite).
  const adapter = new PrismaPGlite(lite) as unknown as PrismaPg;
  const prisma = new PrismaClient({ adapter, transactionOptions });
  return {
    prisma,
    kind: "pglite",
    schema: "public",
    sql,
    // In process: nothing to wait behind but the queries before it.
    ping: async () => void (await sql.query("SELECT 1")),
    async close() {
      await prisma.$disconnect();
      await lite.close();
    },
  };
}
