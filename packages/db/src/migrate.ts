// Applies prisma/migrations/*/migration.sql in name order at start-up, on Postgres and PGlite
// alike. Bookkeeping uses Prisma's own `_prisma_migrations` table (same columns, sha256 checksum
// of the file) so `prisma migrate status` / `deploy` agree with what ran here.
//
// On Postgres several services may start at once on a fresh database: `withMigrationLock`
// serializes them per schema with a session advisory lock, so one creates the schema and applies
// the migrations while the others wait, then find nothing left to do.
import { createHash, randomUUID } from "node:crypto";
import { readdir, readFile } from "node:fs/promises";
import path from "node:path";
import { fileURLToPath } from "node:url";
import { packageDir } from "@prover-boost/core";

/** The minimal SQL surface the migrator needs; both pg and PGlite provide it. */
export interface SqlRunner {
  exec(sql: string): Promise<void>;
  query<T>(sql: string, params?: unknown[]): Promise<T[]>;
}

/** prisma/migrations at the repository root, two levels above this package. */
export const defaultMigrationsDir = fileURLToPath(
  new URL("../../prisma/migrations", packageDir("@prover-boost/db", import.meta.url)),
);

const bookkeeping = `CREATE TABLE IF NOT EXISTS "_prisma_migrations" (
  "id" VARCHAR(36) PRIMARY KEY NOT NULL,
  "checksum" VARCHAR(64) NOT NULL,
  "finished_at" TIMESTAMPTZ,
  "migration_name" VARCHAR(255) NOT NULL,
  "logs" TEXT,
  "rolled_back_at" TIMESTAMPTZ,
  "started_at" TIMESTAMPTZ NOT NULL DEFAULT now(),
  "applied_steps_count" INTEGER NOT NULL DEFAULT 0
)`;

export interface MigrationResult {
  applied: string[];
  alreadyApplied: number;
}

/**
 * Runs every migration not yet recorded, each in its own transaction with its bookkeeping row:
 * a migration is recorded if and only if it committed.
 */
export async function applyMigrations(
  db: SqlRunner,
  migrationsDir = defaultMigrationsDir,
): Promise<MigrationResult> {
  await db.exec(bookkeeping);
  const done = await db.query<{ migration_name: string; checksum: string }>(
    `SELECT migration_name, checksum FROM "_prisma_migrations" WHERE finished_at IS NOT NULL AND rolled_back_at IS NULL`,
  );
  const doneByName = new Map(done.map((row) => [row.migration_name, row.checksum]));
  const entries = await readdir(migrationsDir, { withFileTypes: true });
  const names = entries
    .filter((e) => e.isDirectory())
    .map((e) => e.name)
    .sort();
  const applied: string[] = [];
  for (const name of names) {
    const sql = await readFile(path.join(migrationsDir, name, "migration.sql"), "utf8");
    const checksum = createHash("sha256").update(sql).digest("hex");
    const previous = doneByName.get(name);
    if (previous !== undefined) {
      if (previous !== checksum) {
        throw new Error(`migration ${name} was edited after it was applied (checksum differs)`);
      }
      continue;
    }
    try {
      await db.exec("BEGIN");
      await db.exec(sql);
      await db.query(
        `INSERT INTO "_prisma_migrations" (id, checksum, finished_at, migration_name, applied_steps_count) VALUES ($1, $2, now(), $3, 1)`,
        [randomUUID(), checksum, name],
      );
      await db.exec("COMMIT");
    } catch (err) {
      await db.exec("ROLLBACK").catch(() => {});
      throw new Error(`migration ${name} failed: ${(err as Error).message}`, { cause: err });
    }
    applied.push(name);
  }
  return { applied, alreadyApplied: names.length - applied.length };
}

/** Raised when another process holds a schema's migration lock for longer than allowed. */
export class MigrationLockTimeoutError extends Error {
  constructor(
    readonly schema: string,
    readonly timeoutMs: number,
  ) {
    super(
      `timed out after ${timeoutMs} ms waiting for the migration lock of Postgres schema "${schema}": ` +
        "another process is migrating it (or holds the lock: see pg_locks where locktype = 'advisory'); " +
        "raise DATABASE_MIGRATE_LOCK_TIMEOUT_MS or stop the process that holds it",
    );
    this.name = "MigrationLockTimeoutError";
  }
}

/**
 * The database stopped answering while this process migrated it: a stalled server, or a network
 * partition that TCP would take hours to notice on an open connection. Each migration is its own
 * transaction with its bookkeeping row, so one cut off here either committed whole (and is found
 * recorded next time) or not at all.
 */
export class MigrationStalledError extends Error {
  constructor(
    readonly schema: string,
    readonly silentMs: number,
  ) {
    super(
      `the database stopped answering while Postgres schema "${schema}" was being migrated ` +
        `(no answer to a ping for ${Math.round(silentMs)} ms); gave up rather than wait on a ` +
        "connection that may never answer. No migration is left half-applied: start again once the database answers",
    );
    this.name = "MigrationStalledError";
  }
}

export const DEFAULT_MIGRATE_LOCK_TIMEOUT_MS = 60_000;
const LOCK_POLL_MS = 100;

/**
 * The advisory lock key of a schema's migrations: a fixed namespace plus the schema name,
 * hashed to the signed 64-bit key `pg_advisory_lock` takes.
 */
export function migrationLockKey(schema: string): bigint {
  const digest = createHash("sha256").update(`prover-boost:migrate:${schema}`).digest();
  return digest.readBigInt64BE(0);
}

/**
 * Runs `fn` holding the schema's migration lock on `db`, which must be one dedicated Postgres
 * session (a session-level advisory lock belongs to its connection; if the process dies the
 * server releases it). Waits at most `timeoutMs` for the lock, then throws
 * MigrationLockTimeoutError.
 */
export async function withMigrationLock<T>(
  db: SqlRunner,
  schema: string,
  fn: () => Promise<T>,
  timeoutMs = DEFAULT_MIGRATE_LOCK_TIMEOUT_MS,
): Promise<T> {
  const key = migrationLockKey(schema).toString();
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const [row] = await db.query<{ locked: boolean }>(
      "SELECT pg_try_advisory_lock($1::bigint) AS locked",
      [key],
    );
    if (row?.locked) break;
    if (Date.now() >= deadline) throw new MigrationLockTimeoutError(schema, timeoutMs);
    await new Promise((r) =>
      setTimeout(r, Math.min(LOCK_POLL_MS, Math.max(1, deadline - Date.now()))),
    );
  }
  try {
    return await fn();
  } finally {
    await db.query("SELECT pg_advisory_unlock($1::bigint)", [key]).catch(() => {});
  }
}
