// Postgres "restarts": the machine's Postgres is shared, so a restart is emulated at the link:
// the fault proxy between the services and Postgres resets every connection and refuses new ones
// for 3 s, as a restarting server looks to its clients. Once during a burst of bids, and once
// inside the aggregator's payout transaction (held there by a table lock the harness takes, so
// the cut lands mid-transaction every time, whatever the machine's speed).
import { RelayClient } from "@prover-boost/sdk";
import pg from "pg";
import { account, openAuction, signedBid } from "../../fixtures.ts";
import { TEST_DATABASE_URL } from "../../harness.ts";
import { type BidTally, placeBid } from "../lib/market.ts";
import type { Scenario } from "../lib/scenario.ts";
import { pollUntil, sleep } from "../lib/util.ts";
import { World } from "../lib/world.ts";
import { inWorld, loser, provingBlock, settle, treePlan, WINNER, winner } from "./common.ts";

const OUTAGE_MS = 3000;

export const postgresMidBids: Scenario = {
  name: "Postgres restart mid-bids",
  injected: `Postgres links cut, refused ${OUTAGE_MS / 1000} s, during 32 bids`,
  timeoutMs: 600_000,
  run: () =>
    inWorld(World.start, async (world) => {
      const bidders = Array.from({ length: 30 }, (_, i) => account(0xfb00 + i));
      await world.fund([winner, loser, ...bidders]);
      await world.startWorkers(WINNER, { prefix: "w" });
      const n = 1;
      const signed = await Promise.all([
        signedBid(winner, n, { basisPointFee: 500 }),
        signedBid(loser, n, { basisPointFee: 1500 }),
        ...bidders.map((b, i) => signedBid(b, n, { basisPointFee: 1000 + i })),
      ]);
      const now = Date.now();
      const open = await openAuction(n, {
        txCount: 4,
        biddingClosesAt: now + 10_000,
        proofDeadline: now + 130_000,
      });
      await world.client.openAuction(open.auction, open.txs, open.signature);
      // A short client timeout, so a bid the relay holds during the outage is retried.
      const client = new RelayClient({ baseUrl: world.url, timeoutMs: 3000 });
      const tally: BidTally = { accepted: 0, retried: 0, refused: 0, answers: {} };
      const until = open.auction.biddingClosesAt - 500;
      // One bid every 120 ms: the burst spans the outage.
      const bidding = Promise.all(
        signed.map(async (b, i) => {
          await sleep(i * 120);
          await placeBid(world, b.quote, b.signature, until, tally, client);
        }),
      );
      await sleep(1000);
      world.pgProxy.cut();
      await sleep(OUTAGE_MS);
      world.pgProxy.restore();
      world.faultEnded();
      await bidding;
      const columns = await settle(world, n);
      columns.notes.push(
        `bids: ${tally.accepted} answered 202, ${tally.retried} retried, ${tally.refused} refused`,
      );
      const answers = Object.entries(tally.answers).map(([a, c]) => `${c}x ${a}`);
      if (answers.length > 0) columns.notes.push(`other answers: ${answers.join(", ")}`);
      if (tally.accepted < signed.length) {
        columns.notes.push(`${signed.length - tally.accepted} bids never accepted in the window`);
      }
      return columns;
    }),
};

export const postgresMidPayout: Scenario = {
  name: "Postgres restart mid-payout",
  injected: `Postgres links cut, refused ${OUTAGE_MS / 1000} s, inside the payout transaction`,
  timeoutMs: 600_000,
  run: () =>
    inWorld(World.start, async (world) => {
      const lock = new pg.Client({ connectionString: TEST_DATABASE_URL });
      await lock.connect();
      try {
        await world.startWorkers(WINNER, { prefix: "w" });
        // SHARE blocks inserts into Payout (the payout transaction's rows), not reads.
        const table = `"${world.schema}"."Payout"`;
        await lock.query("BEGIN");
        await lock.query(`LOCK TABLE ${table} IN SHARE MODE`);
        await provingBlock(world, 1, { ...treePlan(), txCount: 4 });
        await pollUntil(
          async () => {
            const { rows } = await lock.query<{ n: number }>(
              "SELECT COUNT(*)::int AS n FROM pg_locks WHERE relation = $1::regclass AND NOT granted",
              [table],
            );
            return rows[0]!.n > 0;
          },
          120_000,
          25,
          "the payout transaction did not start",
        );
        // The aggregator is inside its payout transaction: cut it there, then let go of the
        // table (its session, gone, rolls back instead of committing).
        world.pgProxy.cut();
        await lock.query("ROLLBACK");
        const during = await world.block(1);
        await sleep(OUTAGE_MS);
        world.pgProxy.restore();
        world.faultEnded();
        const columns = await settle(world, 1);
        columns.notes.push(`stage when cut: ${during?.stage}`);
        return columns;
      } finally {
        await lock.end().catch(() => {});
      }
    }),
};

export const postgresScenarios = [postgresMidBids, postgresMidPayout];
