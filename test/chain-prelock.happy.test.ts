// The escrow index's up-front locks (lockAddressesOf): a booking takes the bid lock and balance
// rows of every address its events name before any event, up to PRELOCK_MAX_ADDRESSES of them;
// past that (a range read while catching up) nothing up front, as each bid lock is an entry of
// Postgres's shared lock table until the commit. On real Postgres.
import { lockAddressesOf, PRELOCK_MAX_ADDRESSES } from "@prover-boost/chain";
import { accounts } from "@prover-boost/db";
import { privateKeyToAddress } from "viem/accounts";
import { describe, expect, it } from "vitest";
import { useLedgerDb } from "./support/ledger-db.ts";

const ledger = useLedgerDb();

const addresses = (n: number) =>
  Array.from({ length: n }, (_, i) =>
    privateKeyToAddress(`0x${(i + 1).toString(16).padStart(64, "0")}`),
  );

describe("the escrow index's up-front locks", () => {
  it.each([
    { n: 3, expected: 3, what: "all" },
    { n: PRELOCK_MAX_ADDRESSES, expected: PRELOCK_MAX_ADDRESSES, what: "all" },
    { n: PRELOCK_MAX_ADDRESSES + 1, expected: 0, what: "none" },
  ])(
    "$n addresses named (an account, a list of recipients): bid locks and rows taken up front: $what",
    async ({ n, expected }) => {
      await ledger.reset();
      const all = addresses(n);
      // Each has a balance row, locked with its bid lock.
      await ledger.db.prisma.accountBalance.createMany({
        data: all.map((a) => ({ account: accounts.available(a), balance: "1" })),
      });
      const events = [{ account: all[0] }, { recipients: all.slice(1), amounts: [1n] }];
      const held = await ledger.db.prisma.$transaction(async (tx) => {
        await lockAddressesOf(tx, events);
        const [advisory] = await tx.$queryRaw<{ n: bigint }[]>`
        SELECT count(*) AS n FROM pg_locks
        WHERE locktype = 'advisory' AND pid = pg_backend_pid()`;
        // Seen from another connection: the rows this transaction holds are skipped.
        const [free] = await ledger.db.prisma.$queryRaw<{ n: bigint }[]>`
        SELECT count(*) AS n FROM (SELECT 1 FROM "AccountBalance" FOR UPDATE SKIP LOCKED) AS s`;
        return { advisory: Number(advisory!.n), rows: n - Number(free!.n) };
      });
      expect(held).toEqual({ advisory: expected, rows: expected });
    },
  );
});
