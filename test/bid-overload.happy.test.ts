// Overload: bids stuck for seconds behind a lock are answered properly once it is released.
// Found by the 2,000-bid run (concurrency.happy.test.ts) on a loaded machine: with Prisma's default
// transaction maxWait (2 s) a bid that waited that long for one of the relay's pooled connections
// was answered 500 INTERNAL. Bids are now written in group commits that use at most
// BID_WRITES_IN_FLIGHT connections, so they cannot drain the pool; what must still hold is that
// bids stuck for seconds behind a lock are answered properly once it is released. Made
// deterministic here: a relay process runs on its own schema, and the prover's market lock is held
// for about 4 s while 20 bids arrive. Nothing depends on machine speed: the bids are released by
// the test, not by a timer racing them.
import { randomInt } from "node:crypto";
import { type Database, openDatabase } from "@prover-boost/db";
import { deleteKeysWithPrefix } from "@prover-boost/queue";
import { type QuoteJson, signQuote } from "@prover-boost/sdk";
import { Redis } from "ioredis";
import pg from "pg";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { account, currentSlot, domain, openAuction } from "./fixtures.ts";
import { ADMIN_TOKEN, TEST_DATABASE_URL, TEST_REDIS_URL } from "./harness.ts";
import { dropSchema } from "./support/databases.ts";
import {
  call,
  type RelayProcess,
  relayProcessEnv,
  sleep,
  startRelay,
  stopRelay,
} from "./support/relay-processes.ts";

const id = randomInt(2 ** 40).toString(16);
const schema = `t_overload_${id}`;
const prefix = `pbtest-overload-${id}`;

let db: Database;
let relay: RelayProcess | undefined;

beforeAll(async () => {
  db = await openDatabase({ databaseUrl: TEST_DATABASE_URL, schema }); // creates and migrates
  relay = await startRelay(relayProcessEnv(schema, prefix));
}, 120_000);

afterAll(async () => {
  if (relay) await stopRelay(relay);
  // The relay leaves a record of its presence as it stops (when it was last seen serving).
  const redis = new Redis(TEST_REDIS_URL);
  await deleteKeysWithPrefix(redis, prefix);
  redis.disconnect();
  await db?.close();
  await dropSchema(schema);
}, 60_000);

/** Backends waiting, directly or through other waiters, on a lock held by backend `holder`. */
async function waitersOn(client: pg.Client, holder: number): Promise<number> {
  const { rows } = await client.query<{ pid: number; blockers: number[] }>(
    "SELECT pid, pg_blocking_pids(pid) AS blockers FROM pg_stat_activity WHERE cardinality(pg_blocking_pids(pid)) > 0",
  );
  const chain = new Set([holder]);
  for (let grew = true; grew; ) {
    grew = false;
    for (const r of rows) {
      if (!chain.has(r.pid) && r.blockers.some((b) => chain.has(b))) {
        chain.add(r.pid);
        grew = true;
      }
    }
  }
  return chain.size - 1;
}

describe("overload", () => {
  const POOL = 10;

  it("bids held seconds behind a lock are all accepted once it is released (no 5xx)", async () => {
    const holder = account(0x2000);
    const block = 1;
    const { url } = relay!;
    const open = await openAuction(block, {
      biddingClosesAt: Date.now() + 10 * 60_000,
      proofDeadline: Date.now() + 20 * 60_000,
    });
    expect((await call(url, "POST", "/v1/auctions", open.body)).status).toBe(201);
    const deposit = { prover: holder.address, amount: "1000000000" };
    const credited = await call(url, "POST", "/v1/admin/deposits", deposit, ADMIN_TOKEN);
    expect(credited.status).toBe(201);
    const slot = currentSlot();
    const quotes = await Promise.all(
      Array.from({ length: 2 * POOL }, async (_, i) => {
        const quote: QuoteJson = {
          epochToProve: block,
          validUntilSlot: slot + 1000 + i,
          bondAmount: "1000",
          prover: holder.address,
          basisPointFee: 100 + i,
        };
        return { quote, signature: await signQuote(holder, domain, quote) };
      }),
    );
    // Hold the prover's market lock, so that its bids queue behind it inside their transaction.
    const lock = new pg.Client({
      connectionString: TEST_DATABASE_URL,
      options: `-c search_path="${schema}"`,
    });
    await lock.connect();
    try {
      await lock.query("BEGIN");
      await lock.query("SELECT pb_lock_prover($1)::text", [holder.address]);
      const pid = (await lock.query<{ pid: number }>("SELECT pg_backend_pid() AS pid")).rows[0]!
        .pid;
      const first = quotes.slice(0, POOL).map((q) => call(url, "POST", "/v1/bids", q));
      // The relay's bid writes are waiting for the lock ...
      const until = Date.now() + 60_000;
      while ((await waitersOn(lock, pid)) < 1) {
        if (Date.now() > until) throw new Error("the relay's bids never queued on the lock");
        await sleep(50);
      }
      // ... and these queue behind them, longer than Prisma's default maxWait of 2 s.
      const rest = quotes.slice(POOL).map((q) => call(url, "POST", "/v1/bids", q));
      await sleep(4_000);
      await lock.query("ROLLBACK");
      const answers = await Promise.all([...first, ...rest]);
      const statuses = answers.map((r) =>
        `${r.status} ${(r.body.error as { code?: string } | undefined)?.code ?? ""}`.trim(),
      );
      console.log(`pool saturation: ${JSON.stringify(statuses)}`);
      expect(statuses).toEqual(Array(2 * POOL).fill("202"));
    } finally {
      await lock.end();
    }
  }, 120_000);
});
