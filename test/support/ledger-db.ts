// The Postgres schema the ledger property tests (ledger-model, ledger-races) run the real ledger
// functions against: a fresh schema per test file, emptied between cases, and dropped at the end.
// The pool is large because the race tests run up to 20 transactions at once on one prover.
import { randomBytes } from "node:crypto";
import { type Database, openDatabase } from "@prover-boost/db";
import { afterAll, beforeAll } from "vitest";
import { TEST_DATABASE_URL } from "../harness.ts";
import { dropSchema } from "./databases.ts";

/** Generous waits: transactions queue on one prover's balance rows by design. */
export const txOptions = { maxWait: 30_000, timeout: 30_000 };

export interface LedgerDb {
  /** The open database; set before the file's first test. */
  readonly db: Database;
  /** Empties the journal and the balances. */
  reset(): Promise<void>;
  /** An account's stored balance (0 when it has no row). */
  balanceOf(account: string): Promise<bigint>;
}

/** Opens a fresh schema before the file's tests and drops it after them. */
export function useLedgerDb(): LedgerDb {
  const schema = `t_ledger_${randomBytes(5).toString("hex")}`;
  let db: Database | undefined;
  beforeAll(async () => {
    db = await openDatabase({ databaseUrl: TEST_DATABASE_URL, schema, poolSize: 24 });
  });
  afterAll(async () => {
    await db?.close();
    await dropSchema(schema);
  });
  const ledger: LedgerDb = {
    get db() {
      if (!db) throw new Error("the ledger database is not open yet");
      return db;
    },
    reset: async () => {
      await ledger.db.sql.exec(`TRUNCATE "LedgerEntry", "AccountBalance" RESTART IDENTITY`);
    },
    balanceOf: async (account) => {
      const row = await ledger.db.prisma.accountBalance.findUnique({ where: { account } });
      return row ? BigInt(row.balance.toFixed()) : 0n;
    },
  };
  return ledger;
}
