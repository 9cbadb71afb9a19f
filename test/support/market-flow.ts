// Helpers for the deadline, payout-crash, events and shares integration tests: worker sign-in,
// proving leased jobs, reading the public API with plain fetch, and ledger checks straight from
// Postgres (movements balance, running balances match the journal, guarded accounts >= 0).
import { type BoosterConfig, simProof } from "@prover-boost/core";
import type { Prisma } from "@prover-boost/db";
import {
  type AuctionJson,
  type BlockView,
  type LeasedJob,
  newWorkerLogin,
  type RelayClient,
  RelayError,
  signWorkerLogin,
  type WorkerLoginJson,
} from "@prover-boost/sdk";
import type { LocalAccount } from "viem";
import { expect } from "vitest";
import { allJobTypes, domain, openAuction } from "../fixtures.ts";
import { eventually, type Stack } from "../harness.ts";

/**
 * Bidding time for auctions that must receive bids: wide enough that pre-signed bids land before
 * the close even on a loaded machine (a cold relay can take over a second for its first bid).
 */
export const BIDDING_MS = 5000;

/**
 * Opens an auction that needs no bids, closing `biddingMs` from now. A loaded machine may deliver
 * the request after that moment (400 INVALID_SCHEDULE, which changes nothing): then it is signed
 * again with twice the time.
 */
export async function openUnclaimed(
  stack: Stack,
  blockNumber: number,
  overrides: Partial<AuctionJson> & { txCount?: number } = {},
  biddingMs = 300,
) {
  for (let window = biddingMs; ; window *= 2) {
    const now = Date.now();
    const open = await openAuction(blockNumber, {
      proofDeadline: now + 600_000,
      ...overrides,
      biddingClosesAt: now + window,
    });
    try {
      await stack.client.openAuction(open.auction, open.txs, open.signature);
      return open;
    } catch (err) {
      if (!(err instanceof RelayError && err.code === "INVALID_SCHEDULE") || window > 60_000) {
        throw err;
      }
    }
  }
}

/** Signs a worker of `operator` in and returns its job client. */
export async function signIn(
  stack: Stack,
  operator: LocalAccount,
  workerId: string,
  capacity = 1,
): Promise<RelayClient> {
  const login: WorkerLoginJson = newWorkerLogin({
    operator: operator.address,
    workerId,
    capacity,
    jobTypes: allJobTypes,
  });
  const signature = await signWorkerLogin(operator, domain, login);
  const { token } = await stack.client.createSession(login, signature, {
    cores: 4,
    memoryMb: 8192,
    gpus: 0,
  });
  return stack.client.withToken(token);
}

/** The proof the relay expects for a leased job (sim scheme). */
export const proofOf = (job: LeasedJob) =>
  simProof({ ...job, inputs: job.inputs, children: job.children.map((c) => c.proof) });

/** The block's stage, read over HTTP. */
export const stageOf = async (stack: Stack, blockNumber: number) =>
  (await stack.client.getBlock(blockNumber)).stage;

/** Waits (generously) until the block is in `stage`; returns its view. */
export function waitForStage(
  stack: Stack,
  blockNumber: number,
  stage: BlockView["stage"],
  timeoutMs = 30_000,
): Promise<BlockView> {
  return eventually(async () => {
    const block = await stack.client.getBlock(blockNumber);
    return block.stage === stage ? block : null;
  }, timeoutMs);
}

/**
 * Workers take turns, one at a time: each leases (long poll) and proves what it gets, until the
 * block reaches `until` (one stage or any of several). Taking turns makes every worker prove at least one job of a tree with at
 * least as many jobs as workers, whatever the machine's speed.
 */
export async function proveInTurns(
  stack: Stack,
  blockNumber: number,
  workers: RelayClient[],
  until: BlockView["stage"] | BlockView["stage"][] = "paid",
  timeoutMs = 45_000,
): Promise<BlockView> {
  const targets = Array.isArray(until) ? until : [until];
  const deadline = Date.now() + timeoutMs;
  for (let turn = 0; ; turn++) {
    const block = await stack.client.getBlock(blockNumber);
    if (targets.includes(block.stage)) return block;
    if (Date.now() > deadline) {
      throw new Error(`block ${blockNumber} still ${block.stage} after ${timeoutMs} ms`);
    }
    const w = workers[turn % workers.length]!;
    const job = await w.lease(block.stage === "proven" ? 0 : 500);
    if (job) {
      await w.submitResult(job.id, proofOf(job));
    } else if (block.stage === "proven") {
      await new Promise((r) => setTimeout(r, 50));
    }
  }
}

/** GET a public path with plain fetch; fails the test on a non-200 answer. */
export async function getJson<T>(stack: Stack, path: string): Promise<T> {
  const res = await fetch(`${stack.url}${path}`);
  const text = await res.text();
  expect(res.status, `${path}: ${text}`).toBe(200);
  return JSON.parse(text) as T;
}

export interface PenaltyItem {
  blockNumber: number | null;
  jobId: string | null;
  operator: string;
  worker: string | null;
  kind: string;
  amount: string;
  createdAt: number;
}

export interface PayoutItem {
  blockNumber: number;
  recipient: string;
  role: string;
  amount: string;
  createdAt: number;
}

export interface PageOf<T> {
  items: T[];
  nextCursor: string | null;
}

/** Every balance, from the running balances table. */
export async function balanceMap(prisma: Prisma): Promise<Map<string, bigint>> {
  const rows = await prisma.accountBalance.findMany();
  return new Map(rows.map((r) => [r.account, BigInt(r.balance.toFixed())]));
}

/** A ledger account's running balance (0 when it has none). */
export async function balance(prisma: Prisma, account: string): Promise<bigint> {
  const row = await prisma.accountBalance.findUnique({ where: { account } });
  return row ? BigInt(row.balance.toFixed()) : 0n;
}

export interface Movement {
  movementId: string;
  kind: string;
  blockNumber: number | null;
  legs: Map<string, bigint>;
}

/** The ledger's movements (legs merged by account), optionally only those of one kind/block. */
export async function movements(
  prisma: Prisma,
  where: { kind?: string; blockNumber?: number } = {},
): Promise<Movement[]> {
  const rows = await prisma.ledgerEntry.findMany({ where, orderBy: { id: "asc" } });
  const byId = new Map<string, Movement>();
  for (const r of rows) {
    let m = byId.get(r.movementId);
    if (!m) {
      m = { movementId: r.movementId, kind: r.kind, blockNumber: r.blockNumber, legs: new Map() };
      byId.set(r.movementId, m);
    }
    m.legs.set(r.account, (m.legs.get(r.account) ?? 0n) + BigInt(r.amount.toFixed()));
  }
  return [...byId.values()];
}

/**
 * The ledger's global invariants: every movement sums to zero, every running balance equals the
 * sum of its journal rows, and no account but `external:*` is negative.
 */
export async function expectLedgerConsistent(prisma: Prisma): Promise<void> {
  const unbalanced = await prisma.$queryRaw<{ movementId: string; total: string }[]>`
    SELECT "movementId", SUM(amount)::text AS total FROM "LedgerEntry"
    GROUP BY "movementId" HAVING SUM(amount) <> 0`;
  expect(unbalanced).toEqual([]);
  const drift = await prisma.$queryRaw<{ account: string; balance: string; journal: string }[]>`
    SELECT COALESCE(b.account, j.account) AS account,
           COALESCE(b.balance, 0)::text AS balance, COALESCE(j.total, 0)::text AS journal
    FROM "AccountBalance" b
    FULL OUTER JOIN (SELECT account, SUM(amount) AS total FROM "LedgerEntry" GROUP BY account) j
      ON j.account = b.account
    WHERE COALESCE(b.balance, 0) <> COALESCE(j.total, 0)`;
  expect(drift).toEqual([]);
  const negative = await prisma.$queryRaw<{ account: string }[]>`
    SELECT account FROM "AccountBalance" WHERE balance < 0 AND account NOT LIKE 'external:%'`;
  expect(negative).toEqual([]);
}

export interface SseEvent {
  event: string;
  data: unknown;
}

/** Reads a server-sent event stream to its end, pushing each event as it arrives. */
export async function follow(url: string, into: SseEvent[], signal: AbortSignal): Promise<void> {
  const res = await fetch(url, { signal, headers: { accept: "text/event-stream" } });
  expect(res.status).toBe(200);
  expect(res.headers.get("content-type")).toMatch(/^text\/event-stream/);
  const reader = res.body!.getReader();
  const decoder = new TextDecoder();
  let buf = "";
  for (;;) {
    const { done, value } = await reader.read();
    if (done) break;
    buf += decoder.decode(value, { stream: true });
    let end = buf.indexOf("\n\n");
    while (end >= 0) {
      const frame = buf.slice(0, end);
      buf = buf.slice(end + 2);
      let event = "message";
      const data: string[] = [];
      for (const line of frame.split("\n")) {
        if (line.startsWith("event:")) event = line.slice(6).trim();
        else if (line.startsWith("data:")) data.push(line.slice(5).trimStart());
      }
      if (data.length > 0) into.push({ event, data: JSON.parse(data.join("\n")) });
      end = buf.indexOf("\n\n");
    }
  }
  expect(buf.trim()).toBe("");
}

/** The `stage` events' stages, in the order they came. */
export const stagesOf = (events: SseEvent[]) =>
  events.filter((e) => e.event === "stage").map((e) => (e.data as { stage: string }).stage);

/**
 * Runs `work` on a stack whose aggregator loop is not running, ticking the aggregator by hand
 * meanwhile (closing auctions, fanning out), and not after: nothing else it does, payouts above
 * all, runs later unless the test asks.
 */
export async function withTicks<T>(stack: Stack, work: () => Promise<T>): Promise<T> {
  const { aggregator } = stack.aggregator;
  let working = true;
  const ticking = (async () => {
    while (working) {
      await aggregator.tick();
      await new Promise((r) => setTimeout(r, 50));
    }
  })();
  try {
    return await work();
  } finally {
    working = false;
    await ticking;
  }
}

/**
 * Opens auctions nobody bids on for `blocks` (aggregator ticked by hand until each is in open
 * proving: withTicks), then proves each with `operator` until it is `proven`.
 */
export async function provenUnpaid(stack: Stack, operator: LocalAccount, ...blocks: number[]) {
  await withTicks(stack, async () => {
    for (const n of blocks) await openUnclaimed(stack, n, { txCount: 2 });
    for (const n of blocks) await waitForStage(stack, n, "open_proving");
  });
  for (const n of blocks) {
    const worker = await signIn(stack, operator, `w${n}`);
    await proveInTurns(stack, n, [worker], "proven");
  }
}

/**
 * A booster curve made steep (BOOSTER_MAX_SCORE, BOOSTER_A: pass them to the stack) so that
 * scores as low as a test's still earn different shares.
 */
export const steepBooster: BoosterConfig = {
  increment: 125_000n,
  maxScore: 300_000n,
  a: 100_000n,
  k: 1_000_000n,
  minimum: 100_000n,
  decay: 100_000n,
};
