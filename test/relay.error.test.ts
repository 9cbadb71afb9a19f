// Bad input against the relay on real Redis and Postgres: each request gets its contract status
// and stable error code, in the one error shape, and leaves the state exactly as it was.
import { simProof } from "@prover-boost/core";
import type { LeasedJob, RelayClient } from "@prover-boost/sdk";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { account, domain, openAuction, signedBid, snapshot, workerSession } from "./fixtures.ts";
import { eventually, type Stack, startStack } from "./harness.ts";

let stack: Stack;
const prover = account(0xa1);
const other = account(0xa2);

beforeAll(async () => {
  // Long leases: these tests hold a lease without heartbeats and must not see it lapse.
  stack = await startStack({ backend: "postgres", env: { LEASE_MS: "120000" } });
  await stack.admin.deposit(prover.address, 100_000n);
  await stack.admin.deposit(other.address, 100_000n);
  const open = await openAuction(10);
  await stack.client.openAuction(open.auction, open.txs, open.signature);
});
afterAll(async () => stack?.close());

async function send(
  method: "POST" | "GET" | "DELETE",
  url: string,
  payload?: unknown,
  headers: Record<string, string> = {},
) {
  const res = await stack.relay.app.inject({
    method,
    url,
    headers: { "content-type": "application/json", ...headers },
    ...(payload === undefined
      ? {}
      : { payload: typeof payload === "string" ? payload : JSON.stringify(payload) }),
  });
  return { status: res.statusCode, body: res.body ? JSON.parse(res.body) : undefined };
}

async function expectRejected(
  status: number,
  code: string,
  request: () => Promise<{
    status: number;
    body: { error?: { code: string; message: string; requestId: string } };
  }>,
) {
  const before = await snapshot(stack);
  const res = await request();
  expect(res.status).toBe(status);
  expect(res.body.error?.code).toBe(code);
  expect(res.body.error?.message).toEqual(expect.any(String));
  expect(res.body.error?.requestId).toEqual(expect.any(String));
  expect(await snapshot(stack)).toEqual(before);
}

describe("malformed requests", () => {
  it("malformed JSON → 400 INVALID_JSON", () =>
    expectRejected(400, "INVALID_JSON", () => send("POST", "/v1/bids", '{"quote": {')));
  it("missing fields → 400 VALIDATION_FAILED", () =>
    expectRejected(400, "VALIDATION_FAILED", () => send("POST", "/v1/bids", { quote: {} })));
  it("wrong types → 400 VALIDATION_FAILED", async () => {
    const { quote, signature } = await signedBid(prover, 10);
    await expectRejected(400, "VALIDATION_FAILED", () =>
      send("POST", "/v1/bids", { quote: { ...quote, bondAmount: 5000 }, signature }),
    );
    await expectRejected(400, "VALIDATION_FAILED", () =>
      send("POST", "/v1/bids", { quote: { ...quote, basisPointFee: "1000" }, signature }),
    );
    // A negative amount is not a uint256 in canonical decimal.
    await expectRejected(400, "INVALID_INTEGER", () =>
      send("POST", "/v1/bids", { quote: { ...quote, bondAmount: "-5" }, signature }),
    );
  });
  it("bad hex → 400 VALIDATION_FAILED", async () => {
    const open = await openAuction(11);
    await expectRejected(400, "VALIDATION_FAILED", () =>
      send("POST", "/v1/auctions", { ...open.body, txs: ["0xzz", ...open.txs.slice(1)] }),
    );
    const { quote, signature } = await signedBid(prover, 10);
    await expectRejected(400, "VALIDATION_FAILED", () =>
      send("POST", "/v1/bids", { quote: { ...quote, prover: "0x1234" }, signature }),
    );
  });
  it("a fee cap above 10000 bps → 400 VALIDATION_FAILED", async () => {
    const open = await openAuction(12, { maxFeeBps: 10_001 });
    await expectRejected(400, "VALIDATION_FAILED", () => send("POST", "/v1/auctions", open.body));
  });
  it("unknown route → 404 NOT_FOUND", () =>
    expectRejected(404, "NOT_FOUND", () => send("GET", "/v1/nothing")));
});

describe("auctions", () => {
  it("signed by someone who is not a sequencer → 403 SIGNER_NOT_ALLOWED", async () => {
    const open = await openAuction(20, {}, other);
    await expectRejected(403, "SIGNER_NOT_ALLOWED", () => send("POST", "/v1/auctions", open.body));
  });
  it("a signature that is not 65 bytes → 401 BAD_SIGNATURE", async () => {
    const open = await openAuction(21);
    await expectRejected(401, "BAD_SIGNATURE", () =>
      send("POST", "/v1/auctions", { ...open.body, signature: open.signature.slice(0, 100) }),
    );
  });
  it("no signature, or one too long to be one → 401 BAD_SIGNATURE", async () => {
    const open = await openAuction(25);
    const { signature: _, ...unsigned } = open.body;
    await expectRejected(401, "BAD_SIGNATURE", () => send("POST", "/v1/auctions", unsigned));
    await expectRejected(401, "BAD_SIGNATURE", () =>
      send("POST", "/v1/auctions", { ...open.body, signature: `0x${"ab".repeat(200)}` }),
    );
    const { quote } = await signedBid(prover, 10);
    await expectRejected(401, "BAD_SIGNATURE", () => send("POST", "/v1/bids", { quote }));
    // Other input wrong as well: the body is malformed first.
    await expectRejected(400, "VALIDATION_FAILED", () =>
      send("POST", "/v1/bids", { quote: { ...quote, prover: "0x1234" } }),
    );
  });
  it("an existing block → 409 AUCTION_EXISTS", async () => {
    const open = await openAuction(10);
    await expectRejected(409, "AUCTION_EXISTS", () => send("POST", "/v1/auctions", open.body));
  });
  it("an existing block whose bidding has closed → 409 AUCTION_EXISTS, not a schedule error", async () => {
    // The sequencer's retry after bidding closed (its first answer lost) is told it exists.
    const again = await openAuction(10, { biddingClosesAt: Date.now() - 1 });
    await expectRejected(409, "AUCTION_EXISTS", () => send("POST", "/v1/auctions", again.body));
  });
  it("txs that do not match txCount or txsHash → 400", async () => {
    const open = await openAuction(22);
    await expectRejected(400, "TX_COUNT_MISMATCH", () =>
      send("POST", "/v1/auctions", { ...open.body, txs: open.txs.slice(1) }),
    );
    await expectRejected(400, "TXS_HASH_MISMATCH", () =>
      send("POST", "/v1/auctions", { ...open.body, txs: [...open.txs].reverse() }),
    );
  });
  it("bidding closing in the past or after the deadline → 400 INVALID_SCHEDULE", async () => {
    const past = await openAuction(23, { biddingClosesAt: Date.now() - 1 });
    await expectRejected(400, "INVALID_SCHEDULE", () => send("POST", "/v1/auctions", past.body));
    const late = await openAuction(24, {
      biddingClosesAt: Date.now() + 10_000,
      proofDeadline: Date.now() + 5_000,
    });
    await expectRejected(400, "INVALID_SCHEDULE", () => send("POST", "/v1/auctions", late.body));
  });
  it("an unknown auction → 404 AUCTION_NOT_FOUND", () =>
    expectRejected(404, "AUCTION_NOT_FOUND", () => send("GET", "/v1/auctions/999")));
});

describe("bids", () => {
  it("a quote signed by someone other than its prover → 401 BAD_SIGNATURE", async () => {
    const { quote } = await signedBid(prover, 10);
    const { signature } = await signedBid(other, 10, { prover: prover.address });
    await expectRejected(401, "BAD_SIGNATURE", () =>
      send("POST", "/v1/bids", { quote, signature }),
    );
  });
  it("above the fee cap → 422 FEE_ABOVE_CAP", async () => {
    const bid = await signedBid(prover, 10, { basisPointFee: 3001 });
    await expectRejected(422, "FEE_ABOVE_CAP", () => send("POST", "/v1/bids", bid));
  });
  it("a fee past 10000 bps, still a uint32 as the quote signs it → 422 FEE_ABOVE_CAP", async () => {
    for (const basisPointFee of [10_001, 65_536, 2 ** 32 - 1]) {
      const bid = await signedBid(prover, 10, { basisPointFee });
      await expectRejected(422, "FEE_ABOVE_CAP", () => send("POST", "/v1/bids", bid));
    }
    // Past uint32 it is no EpochProofQuote at all.
    const { quote, signature } = await signedBid(prover, 10);
    for (const basisPointFee of [2 ** 32, -1, 1.5]) {
      await expectRejected(400, "VALIDATION_FAILED", () =>
        send("POST", "/v1/bids", { quote: { ...quote, basisPointFee }, signature }),
      );
    }
  });
  it("below the minimum bond → 422 BOND_BELOW_MINIMUM", async () => {
    const bid = await signedBid(prover, 10, { bondAmount: "999" });
    await expectRejected(422, "BOND_BELOW_MINIMUM", () => send("POST", "/v1/bids", bid));
  });
  it("an expired quote → 422 QUOTE_EXPIRED", async () => {
    const bid = await signedBid(prover, 10, { validUntilSlot: 5 });
    await expectRejected(422, "QUOTE_EXPIRED", () => send("POST", "/v1/bids", bid));
  });
  it("a bond above the available collateral → 422 INSUFFICIENT_COLLATERAL", async () => {
    const bid = await signedBid(prover, 10, { bondAmount: "100001" });
    await expectRejected(422, "INSUFFICIENT_COLLATERAL", () => send("POST", "/v1/bids", bid));
  });
  it("an unknown auction → 404 AUCTION_NOT_FOUND", async () => {
    const bid = await signedBid(prover, 404);
    await expectRejected(404, "AUCTION_NOT_FOUND", () => send("POST", "/v1/bids", bid));
  });
  it("a closed auction → 409 AUCTION_CLOSED", async () => {
    const open = await openAuction(30, { biddingClosesAt: Date.now() + 300 });
    await stack.client.openAuction(open.auction, open.txs, open.signature);
    await eventually(async () => (await stack.client.getBlock(30)).stage === "open_proving");
    const bid = await signedBid(prover, 30);
    await expectRejected(409, "AUCTION_CLOSED", () => send("POST", "/v1/bids", bid));
  });
});

describe("admin", () => {
  it("a deposit without the admin token → 401 UNAUTHORIZED", () =>
    expectRejected(401, "UNAUTHORIZED", () =>
      send(
        "POST",
        "/v1/admin/deposits",
        { prover: prover.address, amount: "5" },
        { authorization: "Bearer wrong" },
      ),
    ));
});

describe("workers and jobs", () => {
  let winner: RelayClient;
  let bystander: RelayClient;
  let job: LeasedJob;

  beforeAll(async () => {
    const open = await openAuction(40, { biddingClosesAt: Date.now() + 400, txCount: 2 });
    await stack.client.openAuction(open.auction, open.txs, open.signature);
    const bid = await signedBid(prover, 40);
    await stack.client.submitBid(bid.quote, bid.signature);
    await eventually(async () => (await stack.client.getBlock(40)).stage === "proving");
    winner = await workerSession(stack, prover, "winner-0", undefined, 2);
    bystander = await workerSession(stack, other, "other-0");
    job = (await winner.lease(2000))!;
    expect(job).not.toBeNull();
    // The lease's record is written after its answer: the tests below compare snapshots taken
    // around each rejected request, so they start once it is in.
    await eventually(
      async () =>
        (await stack.db.prisma.proofJob.findUniqueOrThrow({ where: { id: job.id } })).status ===
        "leased",
    );
  });

  it("a stale login → 401 LOGIN_STALE", async () => {
    const { newWorkerLogin, signWorkerLogin } = await import("@prover-boost/sdk");
    const login = newWorkerLogin({
      operator: prover.address,
      workerId: "late",
      issuedAt: Date.now() - 3_600_000,
      capacity: 1,
      jobTypes: ["base"],
    });
    const signature = await signWorkerLogin(prover, domain, login);
    await expectRejected(401, "LOGIN_STALE", () =>
      send("POST", "/v1/workers/sessions", { login, signature }),
    );
  });
  it("leasing without a token → 401 UNAUTHORIZED", () =>
    expectRejected(401, "UNAUTHORIZED", () => send("POST", "/v1/jobs/lease", { waitMs: 0 })));
  it("a committed block's jobs go only to its winner; an unclaimed block's to anyone", async () => {
    // Block 30 closed with no bid: it is in open proving. Block 40 is committed to `prover`.
    expect((await stack.client.getBlock(30)).stage).toBe("open_proving");
    const seen = new Set<number>();
    for (let i = 0; i < 6; i++) {
      const leased = await bystander.lease(0);
      if (!leased) break;
      seen.add(leased.blockNumber);
      await bystander.failJob(leased.id, "test gives it back", true);
    }
    expect([...seen]).toEqual([30]);
  });
  it("a result for a job the worker does not hold → 409 LEASE_LOST", async () => {
    const token = (bystander as unknown as { options: { token: string } }).options.token;
    const proof = simProof({ ...job, children: job.children.map((c) => c.proof) });
    await expectRejected(409, "LEASE_LOST", () =>
      send("POST", `/v1/jobs/${job.id}/result`, { proof }, { authorization: `Bearer ${token}` }),
    );
    await expectRejected(409, "LEASE_LOST", () =>
      send("POST", `/v1/jobs/${job.id}/heartbeat`, {}, { authorization: `Bearer ${token}` }),
    );
  });
  it("a heartbeat, result or fail for a well-formed id of no job → 404 JOB_NOT_FOUND", async () => {
    const token = (bystander as unknown as { options: { token: string } }).options.token;
    const auth = { authorization: `Bearer ${token}` };
    // Well-formed ids: a block with no tree, and a position past this block's tree.
    for (const id of ["777777-0-0", `${job.blockNumber}-9-9`]) {
      await expectRejected(404, "JOB_NOT_FOUND", () =>
        send("POST", `/v1/jobs/${id}/heartbeat`, {}, auth),
      );
      await expectRejected(404, "JOB_NOT_FOUND", () =>
        send("POST", `/v1/jobs/${id}/result`, { proof: `0x${"00".repeat(32)}` }, auth),
      );
      await expectRejected(404, "JOB_NOT_FOUND", () =>
        send("POST", `/v1/jobs/${id}/fail`, { reason: "none", retryable: true }, auth),
      );
      await expectRejected(404, "JOB_NOT_FOUND", () =>
        send(
          "POST",
          `/v1/jobs/${id}/fail`,
          { reason: "stop", retryable: true, shutdown: true },
          auth,
        ),
      );
    }
  });
  it("a wrong proof → 422 INVALID_PROOF: nothing credited, the job goes back to the queue", async () => {
    const before = await stack.db.prisma.proofJob.findUniqueOrThrow({ where: { id: job.id } });
    await expect(winner.submitResult(job.id, `0x${"00".repeat(32)}`)).rejects.toMatchObject({
      status: 422,
      code: "INVALID_PROOF",
    });
    const after = await stack.db.prisma.proofJob.findUniqueOrThrow({ where: { id: job.id } });
    expect(after.status).toBe("queued");
    expect(after.proof).toBeNull();
    expect(before.proof).toBeNull();
    expect(
      await stack.db.prisma.penalty.count({ where: { jobId: job.id, kind: "invalid_proof" } }),
    ).toBe(1);
    // The job can be leased again and proven properly. Its sender is kept off it for LEASE_MS
    // (a cool-down, so a bad proof is not simply sent again at once), so in this open-proving
    // block another operator's worker takes it, proving the other ready jobs it is offered first.
    const helper = await workerSession(stack, other, "other-1", undefined, 2);
    const again = await eventually(async () => {
      const next = await helper.lease(500);
      if (next && next.id !== job.id) {
        await helper.submitResult(
          next.id,
          simProof({ ...next, children: next.children.map((c) => c.proof) }),
        );
        return null;
      }
      return next;
    });
    expect(again.id).toBe(job.id);
    await helper.submitResult(
      again.id,
      simProof({ ...again, children: again.children.map((c) => c.proof) }),
    );
  });
});
