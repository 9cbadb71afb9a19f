// Concurrency: 50 provers, with collateral for only some of their bids, fire 2,000 signed bids at
// once (64 in flight) at TWO relay processes that share one Redis and one Postgres, over 20
// auctions; many bids replace the same prover's earlier quote for the same block. The auctions are
// then closed by the aggregator's close step, and:
// (a) per prover and block, the last accepted quote (in commit order) is the one live at close and
//     every earlier accepted one is `replaced`; every auction's winner is the one a sequential
//     replay of the live bids picks (settleAuction), and the `won` bid beats each `lost` one under
//     compareBids;
// (b) replaying the LEDGER (LedgerEntry rows in id order) per prover, `available`, `reserved` and
//     `locked` never go negative and reserved + locked never exceeds the prover's deposits, at
//     every row; every movement balances; the replay ends at the stored balances;
// (c) every accepted (202) bid is in Postgres under the bidId the relay returned (the quote's
//     EIP-712 digest), and no refused bid left a row or a ledger entry.
// Throughput is logged, never asserted: nothing here depends on machine speed (the auctions close
// explicitly, long after the last bid, and bidding stays open for ten minutes).
// The overload case (bids held seconds behind a lock) is in bid-overload.happy.test.ts.
import { randomInt } from "node:crypto";
import { type AggregatorService, createAggregator } from "@prover-boost/aggregator";
import { aggregatorEnv, parseEnv } from "@prover-boost/config";
import { compareBids, hashQuote, settleAuction } from "@prover-boost/core";
import { type Bid, type Database, type LedgerEntry, openDatabase } from "@prover-boost/db";
import { type QuoteJson, quoteMessage, signQuote } from "@prover-boost/sdk";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { closeAuction } from "../apps/aggregator/src/close-auctions.ts";
import { account, currentSlot, domain, openAuction } from "./fixtures.ts";
import { ADMIN_TOKEN, TEST_DATABASE_URL } from "./harness.ts";
import { dropSchema } from "./support/databases.ts";
import { inPool, prng, shuffle } from "./support/load.ts";
import {
  call,
  type RelayProcess,
  relayProcessEnv,
  sleep,
  startRelay,
  stopRelay,
} from "./support/relay-processes.ts";

const PROVERS = 50;
const BIDS_PER_PROVER = 40;
const AUCTIONS = 20;
const FIRST_BLOCK = 1;
const BLOCKS_PER_PROVER = 10; // each prover bids on 10 of the 20 blocks, ~4 quotes per block
const IN_FLIGHT = 64;
const BOND_UNIT = 1000n; // = the fixture auction's minBond
const seed = Number(process.env.CONCURRENCY_SEED ?? randomInt(2 ** 31));

interface Planned {
  prover: number;
  quote: QuoteJson;
  signature: string;
  digest: string;
  relay: number;
}

interface Outcome {
  planned: Planned;
  /** The final answer, after any retries of a 5xx. */
  status: number;
  code?: string;
  bidId?: string;
  bidStatus?: string;
  /** 5xx answers (or network errors) before the final one. */
  transient: string[];
}

/**
 * Whether the quote was committed: accepted (202), or found already replaced (409 BID_SUPERSEDED)
 * when resubmitted after a 5xx whose transaction had committed after all.
 */
const committed = (o: Outcome) =>
  o.status === 202 || (o.status === 409 && o.code === "BID_SUPERSEDED" && o.transient.length > 0);

const MAX_ATTEMPTS = 8;

const id = randomInt(2 ** 40).toString(16);
const schema = `t_conc_${id}`;
const prefix = `pbtest-conc-${id}`;
const blocks = Array.from({ length: AUCTIONS }, (_, i) => FIRST_BLOCK + i);
const provers = Array.from({ length: PROVERS }, (_, i) => account(0x1000 + i));
const deposits = provers.map((_, i) => BigInt(3 + (i % 3)) * 3n * BOND_UNIT); // 3-5 average bonds

let db: Database;
let relays: RelayProcess[] = [];
let aggregator: AggregatorService | undefined;
const outcomes: Outcome[] = [];
let bids: Bid[] = [];
let ledger: LedgerEntry[] = [];

beforeAll(async () => {
  console.log(`concurrency: seed ${seed} (CONCURRENCY_SEED=${seed} replays this run's quotes)`);
  db = await openDatabase({ databaseUrl: TEST_DATABASE_URL, schema }); // creates and migrates
  const env = relayProcessEnv(schema, prefix);
  relays = await Promise.all([startRelay(env), startRelay(env)]);
  aggregator = await createAggregator(parseEnv(aggregatorEnv, env), { db });
  const [a, b] = relays as [RelayProcess, RelayProcess];

  // 20 auctions, bidding open for ten minutes (they are closed explicitly below).
  for (const n of blocks) {
    const open = await openAuction(n, {
      biddingClosesAt: Date.now() + 10 * 60_000,
      proofDeadline: Date.now() + 20 * 60_000,
    });
    const res = await call(n % 2 ? a.url : b.url, "POST", "/v1/auctions", open.body);
    expect(res.status, JSON.stringify(res.body)).toBe(201);
  }
  for (const [i, p] of provers.entries()) {
    const res = await call(
      i % 2 ? a.url : b.url,
      "POST",
      "/v1/admin/deposits",
      { prover: p.address, amount: deposits[i]!.toString() },
      ADMIN_TOKEN,
    );
    expect(res.status, JSON.stringify(res.body)).toBe(201);
  }

  // 2,000 pre-signed quotes: fees from a narrow range (ties), bonds of 1-5 units; every quote is
  // distinct (validUntilSlot differs), so each has its own digest = bidId.
  const rand = prng(seed);
  const slot = currentSlot();
  const planned: Planned[] = [];
  for (const [i, p] of provers.entries()) {
    const mine = shuffle([...blocks], rand).slice(0, BLOCKS_PER_PROVER);
    for (let j = 0; j < BIDS_PER_PROVER; j++) {
      const quote: QuoteJson = {
        epochToProve: mine[Math.floor(rand() * mine.length)]!,
        validUntilSlot: slot + 1000 + j,
        bondAmount: (BOND_UNIT * BigInt(1 + Math.floor(rand() * 5))).toString(),
        prover: p.address,
        basisPointFee: 100 + Math.floor(rand() * 16),
      };
      planned.push({
        prover: i,
        quote,
        signature: await signQuote(p, domain, quote),
        digest: hashQuote(domain, quoteMessage(quote)),
        relay: 0,
      });
    }
  }
  shuffle(planned, rand).forEach((q, i) => {
    q.relay = i % 2;
  });

  const t0 = performance.now();
  // A client that gets a 5xx resubmits the same signed quote (idempotent by contract) after a
  // pause; the 5xx answers are counted and logged (see bid-overload.happy.test.ts).
  await inPool(planned, IN_FLIGHT, async (q) => {
    const transient: string[] = [];
    for (let attempt = 1; ; attempt++) {
      let answer: Omit<Outcome, "planned" | "transient">;
      try {
        const res = await call(relays[q.relay]!.url, "POST", "/v1/bids", {
          quote: q.quote,
          signature: q.signature,
        });
        const error = res.body.error as { code?: string } | undefined;
        answer = {
          status: res.status,
          ...(error?.code ? { code: error.code } : {}),
          ...(typeof res.body.bidId === "string" ? { bidId: res.body.bidId } : {}),
          ...(typeof res.body.status === "string" ? { bidStatus: res.body.status } : {}),
        };
      } catch (err) {
        answer = { status: 0, code: String(err) };
      }
      if ((answer.status === 0 || answer.status >= 500) && attempt < MAX_ATTEMPTS) {
        transient.push(`${answer.status} ${answer.code}`);
        await sleep(100 * attempt);
        continue;
      }
      outcomes.push({ planned: q, transient, ...answer });
      return;
    }
  });
  const ms = performance.now() - t0;
  const accepted = outcomes.filter((o) => o.status === 202).length;
  const transient = outcomes.flatMap((o) => o.transient);
  const byAnswer = new Map<string, number>();
  for (const o of outcomes) {
    const k = `${o.status}${o.code ? ` ${o.code}` : ""}`;
    byAnswer.set(k, (byAnswer.get(k) ?? 0) + 1);
  }
  console.log(
    `concurrency: ${outcomes.length} bids in ${ms.toFixed(0)} ms → ${((outcomes.length / ms) * 1000).toFixed(0)} bids/s over 2 relays, ${IN_FLIGHT} in flight; ${accepted} accepted, ${outcomes.length - accepted} refused; final answers ${JSON.stringify(Object.fromEntries(byAnswer))}; ${transient.length} transient 5xx answers retried (${[...new Set(transient)].join(", ")})`,
  );

  const t1 = performance.now();
  for (const n of blocks) await closeAuction(aggregator.ctx, n, Date.now());
  console.log(
    `concurrency: closed ${AUCTIONS} auctions in ${(performance.now() - t1).toFixed(0)} ms`,
  );

  bids = await db.prisma.bid.findMany();
  ledger = await db.prisma.ledgerEntry.findMany({ orderBy: { id: "asc" } });
}, 300_000);

afterAll(async () => {
  await Promise.all(relays.map(stopRelay));
  await aggregator?.ctx.fabric.obliterate().catch(() => {});
  await aggregator?.close();
  await db?.close();
  await dropSchema(schema);
}, 60_000);

const acceptedOutcomes = () => outcomes.filter((o) => o.status === 202);
const committedOutcomes = () => outcomes.filter(committed);

describe("2,000 concurrent bids at two relay processes", () => {
  it("every bid ends 202 accepted or 422 INSUFFICIENT_COLLATERAL, and both happen", () => {
    expect(outcomes).toHaveLength(PROVERS * BIDS_PER_PROVER);
    const other = outcomes.filter(
      (o) => !(committed(o) || (o.status === 422 && o.code === "INSUFFICIENT_COLLATERAL")),
    );
    const logs = relays.map((r, i) => `relay ${i} stderr:\n${r.stderr.join("").slice(0, 4000)}`);
    expect(
      other.map((o) => `${o.status} ${o.code}`),
      `unexpected answers\n${logs.join("\n")}`,
    ).toEqual([]);
    expect(acceptedOutcomes().length).toBeGreaterThan(0);
    expect(acceptedOutcomes().length).toBeLessThan(outcomes.length);
    // Both relays took bids.
    for (const r of [0, 1]) {
      expect(acceptedOutcomes().filter((o) => o.planned.relay === r).length).toBeGreaterThan(0);
    }
  });

  it("(c) every accepted bid is in Postgres under its digest; no refused bid left a trace", () => {
    const rows = new Map(bids.map((b) => [b.id, b]));
    const accepted = acceptedOutcomes();
    const missing = accepted.filter((o) => !rows.has(o.bidId!));
    expect(
      missing.map((o) => o.bidId),
      "accepted bids missing from Postgres",
    ).toEqual([]);
    for (const o of accepted) {
      expect(o.bidId).toBe(o.planned.digest);
      expect(o.bidStatus).toBe("accepted");
      const row = rows.get(o.bidId!)!;
      expect({
        block: row.blockNumber,
        prover: row.prover,
        fee: row.basisPointFee,
        bond: row.bondAmount.toFixed(),
        validUntilSlot: Number(row.validUntilSlot),
        signature: row.signature,
      }).toEqual({
        block: o.planned.quote.epochToProve,
        prover: o.planned.quote.prover,
        fee: o.planned.quote.basisPointFee,
        bond: o.planned.quote.bondAmount,
        validUntilSlot: o.planned.quote.validUntilSlot,
        signature: o.planned.signature.toLowerCase(),
      });
    }
    const committedIds = new Set(committedOutcomes().map((o) => o.planned.digest));
    expect(
      bids.filter((b) => !committedIds.has(b.id)).map((b) => b.id),
      "bid rows nobody was told were accepted",
    ).toEqual([]);
    const refused = new Set(outcomes.filter((o) => !committed(o)).map((o) => o.planned.digest));
    expect(
      ledger.filter((e) => e.ref !== null && refused.has(e.ref)).map((e) => e.ref),
      "ledger entries of refused bids",
    ).toEqual([]);
  });

  /** Per auction: the bids live at close, i.e. each prover's last accepted quote (commit order). */
  function liveAtClose() {
    const rows = new Map(bids.map((b) => [b.id, b]));
    const last = new Map<string, Bid>();
    for (const o of committedOutcomes()) {
      const row = rows.get(o.planned.digest);
      if (!row) continue; // reported by (c)
      const key = `${row.blockNumber}:${row.prover}`;
      const prev = last.get(key);
      if (!prev || row.seq > prev.seq) last.set(key, row);
    }
    return last;
  }

  it("(a) the last accepted quote per prover and block is live at close; earlier ones are replaced", () => {
    const live = new Set([...liveAtClose().values()].map((b) => b.id));
    const wrong = bids
      .map((b) => ({
        id: b.id,
        status: b.status,
        want: live.has(b.id) ? ["won", "lost"] : ["replaced"],
      }))
      .filter((b) => !b.want.includes(b.status));
    expect(wrong).toEqual([]);
    // Replacement really happened, many times.
    expect(bids.filter((b) => b.status === "replaced").length).toBeGreaterThan(0);
  });

  it("(a) every auction's winner is the sequential replay's winner, and beats every other live bid", async () => {
    const live = [...liveAtClose().values()];
    const auctions = await db.prisma.auction.findMany({ orderBy: { blockNumber: "asc" } });
    expect(auctions).toHaveLength(AUCTIONS);
    const ranked = (b: Bid) => ({
      id: b.id,
      prover: b.prover,
      basisPointFee: b.basisPointFee,
      bondAmount: BigInt(b.bondAmount.toFixed()),
      seq: b.seq,
    });
    let contested = 0;
    for (const auction of auctions) {
      const n = auction.blockNumber;
      const mine = live.filter((b) => b.blockNumber === n).map(ranked);
      const expected = settleAuction(mine, "first", auction.maxFeeBps);
      expect(auction.winnerBidId, `block ${n}`).toBe(expected.winner?.id ?? null);
      expect(auction.status, `block ${n}`).toBe(expected.winner ? "committed" : "unclaimed");
      expect(auction.settlementFeeBps, `block ${n}`).toBe(expected.settlementFeeBps);
      const won = bids.filter((b) => b.blockNumber === n && b.status === "won").map(ranked);
      const lost = bids.filter((b) => b.blockNumber === n && b.status === "lost").map(ranked);
      expect(
        won.map((b) => b.id),
        `block ${n}`,
      ).toEqual(expected.winner ? [expected.winner.id] : []);
      expect(won.length + lost.length, `block ${n}`).toBe(mine.length);
      for (const l of lost) expect(compareBids(won[0]!, l), `block ${n}`).toBeLessThan(0);
      if (mine.length > 1) contested++;
      // And the public view agrees, from the other relay process than the one that opened it.
      const view = await call(relays[n % 2 ? 1 : 0]!.url, "GET", `/v1/auctions/${n}`);
      expect(view.status).toBe(200);
      expect((view.body.winner as { bidId?: string } | null)?.bidId ?? null).toBe(
        expected.winner?.id ?? null,
      );
      expect(view.body.bidCount).toBe(mine.length);
    }
    expect(contested).toBeGreaterThan(0);
  });

  it("(b) the ledger, replayed in id order per prover, never over-commits collateral", async () => {
    interface Book {
      available: bigint;
      reserved: bigint;
      locked: bigint;
      deposited: bigint;
    }
    const books = new Map<string, Book>();
    const violations: string[] = [];
    const movements = new Map<string, bigint>();
    // Each prover's rows in id order. A prover's operations are serialized (its Prover row lock,
    // then its balance rows), so per prover id order is commit order, and a movement's rows are
    // contiguous. Every row: no account negative. After every movement (the atomic step; its legs
    // may be written in any order): reserved + locked <= deposits, and nothing is created or lost.
    const rowsOf = new Map<string, { e: LedgerEntry; kind: keyof Omit<Book, "deposited"> }[]>();
    for (const e of ledger) {
      movements.set(e.movementId, (movements.get(e.movementId) ?? 0n) + BigInt(e.amount.toFixed()));
      const m = /^prover:(0x[0-9a-f]{40}):(available|reserved|locked)$/.exec(e.account);
      if (!m) continue;
      const list = rowsOf.get(m[1]!) ?? [];
      rowsOf.set(m[1]!, list);
      list.push({ e, kind: m[2] as "available" | "reserved" | "locked" });
    }
    for (const [addr, rows] of rowsOf) {
      const book: Book = { available: 0n, reserved: 0n, locked: 0n, deposited: 0n };
      books.set(addr, book);
      const state = () =>
        `available ${book.available}, reserved ${book.reserved}, locked ${book.locked}, deposited ${book.deposited}`;
      for (const [i, { e, kind }] of rows.entries()) {
        const amount = BigInt(e.amount.toFixed());
        book[kind] += amount;
        if (e.kind === "deposit") book.deposited += amount;
        if (book.available < 0n || book.reserved < 0n || book.locked < 0n) {
          violations.push(`${addr} entry ${e.id} (${e.kind} ${e.account} ${amount}): ${state()}`);
        }
        if (rows[i + 1]?.e.movementId === e.movementId) continue; // the movement goes on
        if (book.reserved + book.locked > book.deposited) {
          violations.push(`${addr} after movement ${e.movementId} (${e.kind}): ${state()}`);
        }
        if (book.available + book.reserved + book.locked !== book.deposited) {
          violations.push(
            `${addr} after movement ${e.movementId} (${e.kind}) unbalanced: ${state()}`,
          );
        }
      }
    }
    expect(violations).toEqual([]);
    expect([...movements].filter(([, sum]) => sum !== 0n)).toEqual([]);

    // The replay ends where the stored balances are, and where the bids say it should.
    const stored = new Map(
      (await db.prisma.accountBalance.findMany()).map((r) => [
        r.account,
        BigInt(r.balance.toFixed()),
      ]),
    );
    for (const [i, p] of provers.entries()) {
      const addr = p.address.toLowerCase();
      const book = books.get(addr)!;
      expect(book.deposited, addr).toBe(deposits[i]);
      for (const k of ["available", "reserved", "locked"] as const) {
        expect(book[k], `${addr} ${k}`).toBe(stored.get(`prover:${addr}:${k}`) ?? 0n);
      }
      const wonBonds = bids
        .filter((b) => b.prover === p.address && b.status === "won")
        .reduce((s, b) => s + BigInt(b.bondAmount.toFixed()), 0n);
      const liveBonds = bids
        .filter((b) => b.prover === p.address && (b.status === "won" || b.status === "lost"))
        .reduce((s, b) => s + BigInt(b.bondAmount.toFixed()), 0n);
      expect(book.reserved, `${addr} reserved after close`).toBe(0n);
      expect(book.locked, `${addr} locked`).toBe(wonBonds);
      expect(book.available + book.locked, addr).toBe(book.deposited);
      // All of a prover's live bids were reserved at once, before the close.
      expect(liveBonds <= book.deposited, `${addr}: live bonds ${liveBonds}`).toBe(true);
    }
  });
});
