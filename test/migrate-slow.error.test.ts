// A migration that takes longer than DATABASE_QUERY_TIMEOUT_MS (an index built on a large table)
// is not given up by the client while the server goes on to commit it: it runs to its end and is
// recorded with it, so the next start finds it done instead of failing on what it created. One
// that waits for a table another connection holds fails after DATABASE_MIGRATE_LOCK_TIMEOUT_MS,
// rolled back and unrecorded, and runs at the next start.
import { randomBytes } from "node:crypto";
import { cp, mkdir, mkdtemp, rm, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import path from "node:path";
import { defaultMigrationsDir, openDatabase } from "@prover-boost/db";
import pg from "pg";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { TEST_DATABASE_URL } from "./harness.ts";
import { dropSchema } from "./support/databases.ts";

const schema = `t_migslow_${randomBytes(5).toString("hex")}`;
const waiting = `t_migwait_${randomBytes(5).toString("hex")}`;
let dir = "";

beforeAll(async () => {
  dir = await mkdtemp(path.join(tmpdir(), "pb-migrations-"));
  await cp(defaultMigrationsDir, dir, { recursive: true });
  // Named to sort after every real migration.
  const slow = path.join(dir, "99999999999999_slow_index");
  await mkdir(slow);
  await writeFile(
    path.join(slow, "migration.sql"),
    'SELECT pg_sleep(1.5);\nCREATE TABLE "SlowOne" (x int);\n',
  );
});

afterAll(async () => {
  await dropSchema(schema);
  await dropSchema(waiting);
  if (dir) await rm(dir, { recursive: true, force: true });
});

describe("a migration slower than the query timeout", () => {
  it("runs to its end and is recorded with it; the next start finds nothing to do", async () => {
    const options = {
      databaseUrl: TEST_DATABASE_URL,
      schema,
      queryTimeoutMs: 300,
      migrationsDir: dir,
    };
    const first = await openDatabase(options);
    await first.close();
    const again = await openDatabase(options);
    await again.close();
    const check = new pg.Client({ connectionString: TEST_DATABASE_URL });
    await check.connect();
    try {
      const rows = await check.query(
        `SELECT migration_name FROM "${schema}"."_prisma_migrations" WHERE migration_name = $1`,
        ["99999999999999_slow_index"],
      );
      expect(rows.rowCount).toBe(1);
      const table = await check.query(
        "SELECT 1 FROM pg_tables WHERE schemaname = $1 AND tablename = 'SlowOne'",
        [schema],
      );
      expect(table.rowCount).toBe(1);
    } finally {
      await check.end();
    }
  });
});

describe("a migration that waits for a table another connection holds", () => {
  it("fails after the migration lock's timeout, unrecorded, and runs at the next start", async () => {
    const base = { databaseUrl: TEST_DATABASE_URL, schema: waiting };
    await (await openDatabase(base)).close();
    const dir2 = await mkdtemp(path.join(tmpdir(), "pb-migrations-"));
    try {
      await cp(defaultMigrationsDir, dir2, { recursive: true });
      const alter = path.join(dir2, "99999999999999_alter_block");
      await mkdir(alter);
      await writeFile(
        path.join(alter, "migration.sql"),
        'ALTER TABLE "Block" ADD COLUMN "note" text;\n',
      );
      const holder = new pg.Client({ connectionString: TEST_DATABASE_URL });
      await holder.connect();
      try {
        await holder.query("BEGIN");
        await holder.query(`SELECT count(*) FROM "${waiting}"."Block"`);
        const err = await openDatabase({
          ...base,
          migrationsDir: dir2,
          migrateLockTimeoutMs: 300,
        }).catch((e: unknown) => e);
        expect(String(err)).toMatch(/99999999999999_alter_block failed: .*lock timeout/);
        const recorded = await holder.query(
          `SELECT 1 FROM "${waiting}"."_prisma_migrations" WHERE migration_name = $1`,
          ["99999999999999_alter_block"],
        );
        expect(recorded.rowCount).toBe(0);
        await holder.query("COMMIT");
      } finally {
        await holder.end();
      }
      await (await openDatabase({ ...base, migrationsDir: dir2 })).close();
    } finally {
      await rm(dir2, { recursive: true, force: true });
    }
  });
});
