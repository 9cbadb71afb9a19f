// A service whose schema's migration lock is held by someone else waits a bounded time, then
// fails with a clear error and leaves no trace: no schema created, no connection left open.
import { randomBytes } from "node:crypto";
import { MigrationLockTimeoutError, migrationLockKey, openDatabase } from "@prover-boost/db";
import pg from "pg";
import { afterAll, describe, expect, it } from "vitest";
import { TEST_DATABASE_URL } from "./harness.ts";
import { dropSchema } from "./support/databases.ts";

const schema = `t_miglock_${randomBytes(5).toString("hex")}`;

afterAll(async () => {
  await dropSchema(schema);
});

describe("migration lock held elsewhere", () => {
  it("times out with MigrationLockTimeoutError and creates nothing; succeeds once released", async () => {
    const holder = new pg.Client({ connectionString: TEST_DATABASE_URL });
    await holder.connect();
    try {
      const key = migrationLockKey(schema).toString();
      await holder.query("SELECT pg_advisory_lock($1::bigint)", [key]);

      const err = await openDatabase({
        databaseUrl: TEST_DATABASE_URL,
        schema,
        migrateLockTimeoutMs: 300,
      }).catch((e: unknown) => e);
      expect(err).toBeInstanceOf(MigrationLockTimeoutError);
      expect((err as Error).message).toContain(`"${schema}"`);
      expect((err as Error).message).toContain("DATABASE_MIGRATE_LOCK_TIMEOUT_MS");
      const created = await holder.query("SELECT 1 FROM pg_namespace WHERE nspname = $1", [schema]);
      expect(created.rowCount).toBe(0);

      // Once the holder lets go, the same open proceeds.
      await holder.query("SELECT pg_advisory_unlock($1::bigint)", [key]);
      const db = await openDatabase({
        databaseUrl: TEST_DATABASE_URL,
        schema,
        migrateLockTimeoutMs: 300,
      });
      await db.close();
      const after = await holder.query("SELECT 1 FROM pg_namespace WHERE nspname = $1", [schema]);
      expect(after.rowCount).toBe(1);
    } finally {
      await holder.end();
    }
  });

  it("each schema has its own lock key", () => {
    expect(migrationLockKey("a")).not.toBe(migrationLockKey("b"));
    expect(migrationLockKey("a")).toBe(migrationLockKey("a"));
  });
});
