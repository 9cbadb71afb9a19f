// A database that stops answering while it is migrated (a stalled server, or a network partition,
// which TCP notices on an open connection only after hours) fails the start with a clear error
// within seconds instead of keeping the service waiting for ever; no migration is left half
// applied, and the next start, with the database answering, applies it. A long migration on a
// database that answers is not given up. The database is real Postgres behind a TCP proxy that
// holds every byte (fault-proxy.ts).
import { randomBytes } from "node:crypto";
import { cp, mkdir, mkdtemp, rm, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import path from "node:path";
import { defaultMigrationsDir, MigrationStalledError, openDatabase } from "@prover-boost/db";
import pg from "pg";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { eventually, TEST_DATABASE_URL } from "./harness.ts";
import { dropSchema } from "./support/databases.ts";
import { type FaultProxy, startFaultProxy } from "./support/fault-proxy.ts";

const SLOW = "99999999999999_slow_step";
/** An advisory lock the test holds to keep the slow step waiting until the link stalls. */
const GATE = 0x5ab1e;
const schemas = [1, 2].map(() => `t_migstall_${randomBytes(5).toString("hex")}`);
let dir = "";
let proxy: FaultProxy;
const check = new pg.Client({ connectionString: TEST_DATABASE_URL });

beforeAll(async () => {
  dir = await mkdtemp(path.join(tmpdir(), "pb-migrations-"));
  await cp(defaultMigrationsDir, dir, { recursive: true });
  // Named to sort after every real migration.
  await mkdir(path.join(dir, SLOW));
  // It waits for the test's gate (if held), then takes a while, and keeps the session's
  // server-side deadlines where the test can read them.
  await writeFile(
    path.join(dir, SLOW, "migration.sql"),
    `SELECT pg_advisory_lock(${GATE});\nSELECT pg_advisory_unlock(${GATE});\nSELECT pg_sleep(1.5);\n` +
      `CREATE TABLE "SlowStep" AS SELECT current_setting('idle_in_transaction_session_timeout') AS idle,\n` +
      `  current_setting('tcp_user_timeout') AS unacked;\n`,
  );
  proxy = await startFaultProxy(TEST_DATABASE_URL);
  await check.connect();
});

afterAll(async () => {
  await check.end().catch(() => {});
  await proxy?.close();
  for (const s of schemas) await dropSchema(s);
  if (dir) await rm(dir, { recursive: true, force: true });
});

const options = (schema: string) => ({
  databaseUrl: proxy.url,
  schema,
  migrationsDir: dir,
  queryTimeoutMs: 300,
  connectTimeoutMs: 1000,
  migratePingMs: 100,
});

async function recorded(schema: string): Promise<boolean> {
  const rows = await check.query(
    `SELECT 1 FROM "${schema}"."_prisma_migrations" WHERE migration_name = $1 AND finished_at IS NOT NULL`,
    [SLOW],
  );
  return rows.rowCount === 1;
}

describe("a database that stops answering during a migration", () => {
  it("fails the start within seconds, leaves the migration unapplied, and the next start applies it", async () => {
    const schema = schemas[0]!;
    await check.query("SELECT pg_advisory_lock($1)", [GATE]);
    const opening = openDatabase(options(schema)).then(
      () => null,
      (err: unknown) => err,
    );
    // Once the slow step waits at the gate on the server, the link stalls.
    await eventually(async () => {
      const rows = await check.query(
        "SELECT 1 FROM pg_stat_activity WHERE query LIKE 'SELECT pg_advisory_lock%' AND wait_event_type = 'Lock'",
      );
      return (rows.rowCount ?? 0) > 0;
    }, 30_000);
    proxy.stall();
    const stalledAt = Date.now();
    const err = await opening;
    const tookMs = Date.now() - stalledAt;
    expect(err).toBeInstanceOf(MigrationStalledError);
    expect(String(err)).toMatch(/stopped answering while Postgres schema "t_migstall_/);
    // Two pings of at least a second each, not a TCP timeout of hours (generous for a slow machine).
    expect(tookMs).toBeLessThan(15_000);
    proxy.restore();
    await check.query("SELECT pg_advisory_unlock($1)", [GATE]);
    // The server ends the step's transaction once its client is gone: nothing of it is recorded.
    await eventually(async () => {
      const rows = await check.query(
        "SELECT 1 FROM pg_stat_activity WHERE pid <> pg_backend_pid() AND (query LIKE 'SELECT pg_advisory_lock%' OR query LIKE '%pg_sleep(1.5)%')",
      );
      return rows.rowCount === 0;
    }, 30_000);
    expect(await recorded(schema)).toBe(false);
    const table = await check.query(
      "SELECT 1 FROM pg_tables WHERE schemaname = $1 AND tablename = 'SlowStep'",
      [schema],
    );
    expect(table.rowCount).toBe(0);
    // The next start, with the database answering, applies it.
    await (await openDatabase(options(schema))).close();
    expect(await recorded(schema)).toBe(true);
  });

  it("is not mistaken for a long migration on a database that answers", async () => {
    const schema = schemas[1]!;
    await (await openDatabase(options(schema))).close();
    expect(await recorded(schema)).toBe(true);
    // The migration session's server-side deadlines were in force.
    const { rows } = await check.query(`SELECT idle, unacked FROM "${schema}"."SlowStep"`);
    expect(rows).toEqual([{ idle: "1min", unacked: "30000" }]);
  });
});
