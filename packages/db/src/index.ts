export * from "./bids.ts";
export * from "./blocks.ts";
export {
  type Database,
  type DatabaseOptions,
  openDatabase,
  openDatabaseFromEnv,
  type Prisma,
} from "./database.ts";
export type {
  AccountBalance,
  Auction,
  Bid,
  Block,
  BlockTx,
  LedgerEntry,
  Payout,
  Penalty,
  ProofJob,
  Prover,
  WorkerSession,
} from "./generated/client.ts";
export { Prisma as PrismaNamespace } from "./generated/client.ts";
export * from "./ledger.ts";
export {
  applyMigrations,
  DEFAULT_MIGRATE_LOCK_TIMEOUT_MS,
  defaultMigrationsDir,
  MigrationLockTimeoutError,
  MigrationStalledError,
  migrationLockKey,
  type SqlRunner,
  withMigrationLock,
} from "./migrate.ts";
export * from "./penalties.ts";
export * from "./proof-store.ts";
export * from "./proofs.ts";
