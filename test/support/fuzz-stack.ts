// The relay stack every fuzz file (test/fuzz-*.security.test.ts) runs against, and the check
// every fuzzed request goes through. useFuzzStack() starts a real relay on Redis and Postgres with
// an auction open for the whole file (OPEN_BLOCK), a block being proven (PROVING_BLOCK, won by
// `prover`, two signed-in workers holding leases of its tree), and valid signed bodies for each
// endpoint that the fuzz mutates. exercise() sends one request and checks the properties:
// - never a 5xx;
// - every error is exactly { error: { code: /^[A-Z_]+$/, message: string, requestId: string } },
//   its code is in the closed set with the HTTP status the code maps to, and requestId is the
//   x-request-id header;
// - a 4xx to a POST or DELETE changes nothing (Postgres rows, ledger, balances, sessions, jobs,
//   provers, the Redis lease book). The one documented exception, 422 INVALID_PROOF, may only
//   record its penalty and put that job back in the queue.
// Each fuzz file gets a stack of its own, so one file's accepted requests never shape another's.
import { errorStatus } from "@prover-boost/contract";
import { simProof } from "@prover-boost/core";
import {
  type AuctionJson,
  type LeasedJob,
  newWorkerLogin,
  type QuoteJson,
  signAuction,
  signBidCancellation,
  signQuote,
  signWorkerLogin,
  type WorkerLoginJson,
} from "@prover-boost/sdk";
import fc from "fast-check";
import { afterAll, beforeAll, expect } from "vitest";
import { closeAuction } from "../../apps/aggregator/src/close-auctions.ts";
import {
  account,
  allJobTypes,
  currentSlot,
  domain,
  openAuction,
  signedBid,
  snapshot,
} from "../fixtures.ts";
import { eventually, type Stack, sequencer, startStack } from "../harness.ts";
import type { Json, Resigner } from "./fuzz-mutations.ts";

export const OPEN_BLOCK = 10; // open for the whole file
export const PROVING_BLOCK = 20; // closed at once, won by `prover`, its proof tree leased by workers
const FRESH_BLOCKS = [100, 101, 102, 103]; // valid auction bodies the fuzz may open
export const UINT256_MAX = 2n ** 256n - 1n;

export const prover = account(0xf1); // collateral-rich bidder and winner of PROVING_BLOCK
const poor = account(0xf2); // no collateral
const stranger = account(0xf3); // not a sequencer

export interface Worker {
  token: string;
  sessionId: string;
}

/** What useFuzzStack() sets up; filled in by its beforeAll. */
export interface FuzzFixture {
  stack: Stack;
  /** Holds one job of PROVING_BLOCK; its token drives heartbeat/result/fail. */
  mainWorker: Worker;
  /** Holds one job and has capacity 1: its leases fail fast (409). */
  fullWorker: Worker;
  fullJob: LeasedJob;
  mainJob: LeasedJob | null;
  /** Valid bodies per endpoint, to mutate. */
  bases: Record<string, Json[]>;
  /** Valid cancellations, with the block and prover of their path. */
  cancelBases: { block: number; prover: string; body: Json }[];
}

export const fx = { mainJob: null, bases: {}, cancelBases: [] } as unknown as FuzzFixture;

// ---------------------------------------------------------------------------------------------
// State, requests and the properties

export interface Req {
  method: "GET" | "POST" | "DELETE" | "PUT" | "PATCH";
  url: string;
  headers: Record<string, string>;
  payload?: string | undefined;
  /** For 422 INVALID_PROOF: the job the proof was for. */
  jobId?: string | undefined;
}

type State = Awaited<ReturnType<typeof snapshot>> & {
  provers: string[];
  leases: Record<string, string | null>;
  sessionLeases: Record<string, unknown>;
};

/** snapshot(stack), plus provers and the Redis lease book (entries and per-session sets). */
async function state(): Promise<State> {
  const redis = fx.stack.relay.ctx.fabric.redis;
  const base = await snapshot(fx.stack);
  const provers = (await fx.stack.db.prisma.prover.findMany({ orderBy: { address: "asc" } })).map(
    (p) => p.address,
  );
  const leaseKeys = (await redis.keys(`${fx.stack.prefix}:pb:lease:*`)).sort();
  const leaseValues = await Promise.all(
    leaseKeys.map(async (k) => JSON.stringify(await redis.hgetall(k))),
  );
  const setKeys = (await redis.keys(`${fx.stack.prefix}:pb:session-leases:*`)).sort();
  const sessionLeases: Record<string, unknown> = {};
  for (const k of setKeys) sessionLeases[k] = await redis.zrange(k, 0, "-1", "WITHSCORES");
  return {
    ...base,
    provers,
    leases: Object.fromEntries(leaseKeys.map((k, i) => [k, leaseValues[i] ?? null])),
    sessionLeases,
  };
}

function describeReq(req: Req, status: number, text: string) {
  const payload =
    req.payload === undefined
      ? "(none)"
      : req.payload.length > 300
        ? `${req.payload.slice(0, 300)}… (${req.payload.length} chars)`
        : req.payload;
  return `${req.method} ${req.url.slice(0, 200)} headers=${JSON.stringify(req.headers).slice(0, 200)} payload=${payload} → ${status} ${text.slice(0, 300)}`;
}

const omit = (s: State, keys: string[]) =>
  Object.fromEntries(Object.entries(s).filter(([k]) => !keys.includes(k)));

let requests = 0;
const statuses = new Map<number, number>();
const codes = new Map<string, number>();

/** Sends one request and checks the properties. */
export async function exercise(req: Req): Promise<void> {
  const mutating = req.method !== "GET";
  const before = mutating ? await state() : null;
  const res = await fx.stack.relay.app.inject({
    method: req.method,
    url: req.url,
    headers: req.headers,
    ...(req.payload === undefined ? {} : { payload: req.payload }),
  });
  requests++;
  statuses.set(res.statusCode, (statuses.get(res.statusCode) ?? 0) + 1);
  const what = describeReq(req, res.statusCode, res.body);
  let parsed: unknown;
  try {
    parsed = res.body.length > 0 ? JSON.parse(res.body) : undefined;
  } catch {
    parsed = undefined;
  }
  expect(res.statusCode, `5xx: ${what}`).toBeLessThan(500);
  if (res.statusCode < 400) return;
  const b = parsed as { error?: { code?: unknown; message?: unknown; requestId?: unknown } };
  expect(b !== null && typeof b === "object" ? Object.keys(b) : b, `shape: ${what}`).toEqual([
    "error",
  ]);
  expect(Object.keys(b.error ?? {}).sort(), `shape: ${what}`).toEqual([
    "code",
    "message",
    "requestId",
  ]);
  const { code, message, requestId } = b.error as Record<string, unknown>;
  codes.set(String(code), (codes.get(String(code)) ?? 0) + 1);
  expect(code, `code: ${what}`).toMatch(/^[A-Z_]+$/);
  expect(typeof message, `message: ${what}`).toBe("string");
  expect(typeof requestId, `requestId: ${what}`).toBe("string");
  expect(requestId, `requestId: ${what}`).toBe(res.headers["x-request-id"]);
  expect(errorStatus[code as keyof typeof errorStatus], `status of ${code}: ${what}`).toBe(
    res.statusCode,
  );
  if (!mutating || res.statusCode >= 500) return;
  const after = await state();
  if (code === "INVALID_PROOF" && req.jobId) {
    // Documented: the invalid proof is penalized and the job goes straight back to the queue.
    const exempt = ["penalties", "jobs", "leaseKeys", "leases", "sessionLeases"];
    expect(omit(after, exempt), `state after ${what}`).toEqual(omit(before!, exempt));
    expect(after.penalties, `penalty after ${what}`).toBe(before!.penalties + 1);
    const jobsBefore = (before!.jobs as { id: string }[]).filter((j) => j.id !== req.jobId);
    const jobsAfter = (after.jobs as { id: string; status: string }[]).filter(
      (j) => j.id !== req.jobId,
    );
    expect(jobsAfter, `other jobs after ${what}`).toEqual(jobsBefore);
    const job = (after.jobs as { id: string; status: string }[]).find((j) => j.id === req.jobId);
    expect(job?.status, `requeued after ${what}`).toBe("queued");
    return;
  }
  expect(after, `a ${res.statusCode} changed state: ${what}`).toEqual(before);
}

export function withBody(
  ct: string | null,
  text: string | undefined,
): Pick<Req, "headers" | "payload"> {
  return { headers: ct === null ? {} : { "content-type": ct }, payload: text };
}

async function signIn(workerId: string): Promise<Worker> {
  const login: WorkerLoginJson = newWorkerLogin({
    operator: prover.address,
    workerId,
    capacity: 1,
    jobTypes: allJobTypes,
  });
  const signature = await signWorkerLogin(prover, domain, login);
  const s = await fx.stack.client.createSession(login, signature);
  return { token: s.token, sessionId: s.sessionId };
}

async function leaseFor(w: Worker): Promise<LeasedJob | null> {
  const res = await fx.stack.relay.app.inject({
    method: "POST",
    url: "/v1/jobs/lease",
    headers: { authorization: `Bearer ${w.token}`, "content-type": "application/json" },
    payload: JSON.stringify({ waitMs: 0 }),
  });
  if (res.statusCode === 204) return null;
  expect(res.statusCode, res.body).toBe(200);
  const job = (JSON.parse(res.body) as { job: LeasedJob }).job;
  // The job row may be marked `leased` after the answer: let it settle before any snapshot.
  await eventually(async () => {
    const row = await fx.stack.db.prisma.proofJob.findUnique({ where: { id: job.id } });
    return row?.status === "leased";
  });
  return job;
}

export async function holds(w: Worker, job: LeasedJob | null) {
  if (!job) return false;
  return (await fx.stack.relay.ctx.broker.leaseOf(w.sessionId, job.id)) !== null;
}

/** The main worker holds a lease again (its last one may have been given back or proven). */
export async function ensureMainLease() {
  if (await holds(fx.mainWorker, fx.mainJob)) return;
  fx.mainJob = await leaseFor(fx.mainWorker);
}

const keyOf = (address: unknown) =>
  [prover, poor, stranger].find(
    (a) => typeof address === "string" && a.address.toLowerCase() === address.toLowerCase(),
  ) ?? prover;

export const resignBid: Resigner = async (b) => {
  const quote = b.quote as QuoteJson;
  return { ...b, signature: await signQuote(keyOf(quote.prover), domain, quote) };
};
export const resignAuction: Resigner = async (b) => ({
  ...b,
  signature: await signAuction(sequencer, domain, b.auction as AuctionJson),
});
export const resignSession: Resigner = async (b) => {
  const login = b.login as WorkerLoginJson;
  return { ...b, signature: await signWorkerLogin(keyOf(login.operator), domain, login) };
};
export const resignCancel =
  (blockNumber: string, who: string): Resigner =>
  async (b) => {
    if (!/^\d{1,15}$/.test(blockNumber)) throw new Error("not a block number");
    const signature = await signBidCancellation(keyOf(who), domain, {
      bidId: b.bidId as `0x${string}`,
      prover: who as `0x${string}`,
      issuedAt: b.issuedAt as number,
    });
    return { ...b, signature };
  };

export const proofOf = (job: LeasedJob) =>
  simProof({ ...job, children: job.children.map((c) => c.proof) });

/**
 * Starts the fuzz stack before the file's tests and closes it after them, logging how many
 * requests were sent and which statuses and error codes they got.
 */
export function useFuzzStack(): void {
  beforeAll(async () => {
    fx.stack = await startStack({
      // No rate limits; leases that never lapse during the file; no aggregator loop (ticked by
      // hand once), so nothing changes state in the background between two snapshots.
      env: { RATE_LIMIT_PER_IP: "0", LEASE_MS: "600000" },
      aggregator: false,
    });
    const now = Date.now();
    await fx.stack.admin.deposit(prover.address, 10n ** 30n);
    const open = await openAuction(OPEN_BLOCK, {
      biddingClosesAt: now + 15 * 60_000,
      proofDeadline: now + 30 * 60_000,
    });
    await fx.stack.client.openAuction(open.auction, open.txs, open.signature);
    const first = await signedBid(prover, OPEN_BLOCK, { basisPointFee: 1500 });
    const firstBid = await fx.stack.client.submitBid(first.quote, first.signature);

    const proving = await openAuction(PROVING_BLOCK, {
      txCount: 32,
      biddingClosesAt: now + 15 * 60_000,
      proofDeadline: now + 30 * 60_000,
    });
    await fx.stack.client.openAuction(proving.auction, proving.txs, proving.signature);
    const win = await signedBid(prover, PROVING_BLOCK);
    const winBid = await fx.stack.client.submitBid(win.quote, win.signature);
    // Closed explicitly once the bid is in, not by a timer the bid could lose to on a busy machine.
    await closeAuction(fx.stack.aggregator.ctx, PROVING_BLOCK, Date.now());
    await fx.stack.aggregator.aggregator.tick();
    await eventually(async () => {
      await fx.stack.aggregator.aggregator.tick();
      return (await fx.stack.client.getBlock(PROVING_BLOCK)).stage === "proving";
    });
    fx.mainWorker = await signIn("fz-main");
    fx.fullWorker = await signIn("fz-full");
    fx.fullJob = await eventually(() => leaseFor(fx.fullWorker));
    await ensureMainLease();
    expect(fx.mainJob).not.toBeNull();

    const auctions = await Promise.all(FRESH_BLOCKS.map((n) => openAuction(n)));
    const replay = open.body;
    const foreign = await openAuction(104);
    fx.bases.auction = [
      ...auctions.map((a) => a.body),
      replay,
      { ...foreign.body, signature: await signAuction(stranger, domain, foreign.auction) },
    ] as unknown as Json[];
    fx.bases.bid = (await Promise.all([
      signedBid(prover, OPEN_BLOCK, { basisPointFee: 1000 }),
      signedBid(prover, OPEN_BLOCK, { basisPointFee: 900, bondAmount: "7000" }),
      signedBid(prover, OPEN_BLOCK, { bondAmount: UINT256_MAX.toString() }),
      signedBid(poor, OPEN_BLOCK),
      signedBid(prover, PROVING_BLOCK),
      signedBid(prover, FRESH_BLOCKS[0]!),
      (async () => {
        const quote = { ...first.quote, validUntilSlot: currentSlot() - 10 };
        return { quote, signature: await signQuote(prover, domain, quote) };
      })(),
    ])) as unknown as Json[];
    const cancel = async (block: number, bidId: string, who = prover) => {
      const issuedAt = Date.now();
      const signature = await signBidCancellation(who, domain, {
        bidId: bidId as `0x${string}`,
        prover: who.address,
        issuedAt,
      });
      return { block, prover: who.address, body: { bidId, issuedAt, signature } };
    };
    fx.cancelBases = await Promise.all([
      cancel(OPEN_BLOCK, firstBid.bidId),
      cancel(PROVING_BLOCK, winBid.bidId),
      cancel(OPEN_BLOCK, firstBid.bidId, poor),
    ]);
    fx.bases.deposit = [
      { prover: prover.address, amount: "1000" },
      { prover: account(0xf4).address, amount: "1" },
    ];
    const login = (workerId: string, hardware: Record<string, number | string>) => ({
      login: newWorkerLogin({
        operator: prover.address,
        workerId,
        capacity: 4,
        jobTypes: allJobTypes,
      }),
      hardware,
    });
    fx.bases.session = (await Promise.all(
      [
        login("fz-new", { cores: 8, memoryMb: 16384, gpus: 1 }),
        login("fz-bare", {}),
        login("fz-extra", { cores: 2, model: "rtx" }),
      ].map(async (l) => ({ ...l, signature: await signWorkerLogin(prover, domain, l.login) })),
    )) as unknown as Json[];
    fx.bases.lease = [{ waitMs: 0 }, { waitMs: 30_000 }, {}];
    fx.bases.heartbeat = [{}];
    fx.bases.fail = [
      { reason: "out of memory", retryable: true },
      { reason: "gave up", retryable: false },
    ];
  }, 60_000);

  afterAll(async () => {
    if (requests > 0)
      console.log(
        `fuzz: ${requests} requests; statuses ${JSON.stringify(Object.fromEntries([...statuses].sort()))}; codes ${JSON.stringify(Object.fromEntries([...codes].sort()))}`,
      );
    await fx.stack?.close();
  });
}

export const property = <T>(arb: fc.Arbitrary<T>, run: (v: T) => Promise<void>, numRuns: number) =>
  fc.assert(fc.asyncProperty(arb, run), { numRuns });
