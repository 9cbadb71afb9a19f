// A fresh database on either backend the project supports, for tests that run the same SQL on
// both: a new schema on the test Postgres, or a new PGlite directory. close() removes it again.
import { randomBytes } from "node:crypto";
import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { type Database, openDatabase } from "@prover-boost/db";
import pg from "pg";
import { TEST_DATABASE_URL } from "../harness.ts";

export const DATABASE_BACKENDS = ["postgres", "pglite"] as const;
export type DatabaseBackend = (typeof DATABASE_BACKENDS)[number];

export interface ScratchDatabase {
  db: Database;
  close(): Promise<void>;
}

/** `tag` names the schema or directory (t_<tag>_<random>, pb-<tag>-<random>). */
export async function openScratchDatabase(
  backend: DatabaseBackend,
  tag: string,
): Promise<ScratchDatabase> {
  if (backend === "postgres") {
    const schema = `t_${tag}_${randomBytes(5).toString("hex")}`;
    const db = await openDatabase({ databaseUrl: TEST_DATABASE_URL, schema });
    return {
      db,
      async close() {
        await db.close();
        await dropSchema(schema);
      },
    };
  }
  const dir = mkdtempSync(join(tmpdir(), `pb-${tag}-`));
  const db = await openDatabase({ dataDir: dir });
  return {
    db,
    async close() {
      await db.close();
      rmSync(dir, { recursive: true, force: true });
    },
  };
}

/** Drops a test schema on the test Postgres and everything in it. */
export async function dropSchema(schema: string): Promise<void> {
  const client = new pg.Client({ connectionString: TEST_DATABASE_URL });
  await client.connect();
  await client.query(`DROP SCHEMA IF EXISTS "${schema}" CASCADE`);
  await client.end();
}
