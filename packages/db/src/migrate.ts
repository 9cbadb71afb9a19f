// Applies prisma/migrations/*/migration.sql in name order at start-up, on Postgres and PGlite
// alike. Bookkeeping uses Prisma's own `_prisma_migrations` table (same columns, sha256 checksum
// of the file) so `prisma migrate status` / `deploy` agree with what ran here.
import { createHash, randomUUID } from "node:crypto";
import { readdir, readFile } from "node:fs/promises";
import path from "node:path";
import { fileURLToPath } from "node:url";

/** The minimal SQL surface the migrator needs; both pg and PGlite provide it. */
export interface SqlRunner {
  exec(sql: string): Promise<void>;
  query<T>(sql: string, params?: unknown[]): Promise<T[]>;
}

export const defaultMigrationsDir = fileURLToPath(
  new URL("../../../prisma/migrations", import.meta.url),
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

/** Runs every migration not yet recorded, each in its own transaction. */
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
    await db.exec(`BEGIN;\n${sql}\n;COMMIT;`).catch(async (err: unknown) => {
      await db.exec("ROLLBACK").catch(() => {});
      throw new Error(`migration ${name} failed: ${(err as Error).message}`, { cause: err });
    });
    await db.query(
      `INSERT INTO "_prisma_migrations" (id, checksum, finished_at, migration_name, applied_steps_count) VALUES ($1, $2, now(), $3, 1)`,
      [randomUUID(), checksum, name],
    );
    applied.push(name);
  }
  return { applied, alreadyApplied: names.length - applied.length };
}
