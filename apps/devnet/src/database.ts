// The devnet's database starts from genesis on every run: the PGlite directory DATA_DIR/devnet,
// or (with DATABASE_URL) a dedicated Postgres schema, emptied and migrated afresh.
import path from "node:path";
import { type Database, openDatabase } from "@prover-boost/db";

export const DEVNET_SCHEMA = "prover_boost_devnet";

export function openDevnetDatabase(
  databaseUrl: string | undefined,
  dataDir: string,
  schema = DEVNET_SCHEMA,
): Promise<Database> {
  if (databaseUrl) return openDatabase({ databaseUrl, schema, poolSize: 20, reset: true });
  return openDatabase({ dataDir: path.resolve(dataDir, "devnet"), reset: true });
}
