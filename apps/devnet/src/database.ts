// The devnet's database starts from genesis on every run: a fresh PGlite directory under
// DATA_DIR, or (with DATABASE_URL) a dedicated Postgres schema that is dropped and re-created.
import { rm } from "node:fs/promises";
import path from "node:path";
import { type Database, openDatabase } from "@prover-boost/db";
import pg from "pg";

export const DEVNET_SCHEMA = "prover_boost_devnet";

export async function openDevnetDatabase(databaseUrl: string | undefined, dataDir: string): Promise<Database> {
  if (databaseUrl) {
    const client = new pg.Client({ connectionString: databaseUrl });
    await client.connect();
    try {
      await client.query(`DROP SCHEMA IF EXISTS "${DEVNET_SCHEMA}" CASCADE`);
    } finally {
      await client.end();
    }
    return openDatabase({ databaseUrl, schema: DEVNET_SCHEMA, poolSize: 20 });
  }
  const dir = path.resolve(dataDir, "devnet");
  await rm(dir, { recursive: true, force: true });
  return openDatabase({ dataDir: dir });
}
