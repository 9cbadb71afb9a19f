// Replay-safe authorizations, attacked as an adversary would, on real Redis and Postgres:
// - quotes Aztec provers signed on Aztec's two-field domain (gossiped publicly) replayed as bids;
// - a WorkerLogin signed for one relay presented to another;
// - a BidCancellation replayed to withdraw the prover's next bid, or signed with a future issuedAt;
// - one signed WorkerLogin used to open several sessions, or with its terms altered;
// - forged bids naming a rival, to use up the rival's bid allowance before the close;
// - workers leasing jobs above their signed hardware tier;
// - unlimited sign-ins.
// Each refusal has a stable code and changes nothing.
import { createAggregator } from "@prover-boost/aggregator";
import { aggregatorEnv, ConfigError, parseEnv, relayEnv } from "@prover-boost/config";
import { createRelay, type Relay } from "@prover-boost/relay";
import {
  newWorkerLogin,
  signBidCancellation,
  signedBidCancellation,
  signQuote,
  signWorkerLogin,
  type WorkerLoginJson,
} from "@prover-boost/sdk";
import type { LocalAccount } from "viem";
import { afterAll, beforeAll, describe, expect, it, vi } from "vitest";
import { account, allJobTypes, domain, openAuction, signedBid, snapshot } from "./fixtures.ts";
import { eventually, type Stack, startStack } from "./harness.ts";
import { openBlock, proofOf, relayError, signIn } from "./support/blocks.ts";
import { TEST_VERIFYING_CONTRACT, testDomain } from "./support/domain.ts";

const aztecDomain = { name: "Aztec Rollup", version: "1" };
const otherContract = "0x00000000000000000000000000000000000000C1" as const;

let stack: Stack;
let other: Stack;
beforeAll(async () => {
  [stack, other] = await Promise.all([
    startStack({
      env: {
        RATE_LIMIT_PER_PROVER: "8",
        RATE_LIMIT_WINDOW_MS: "60000",
        SIGNIN_RATE_LIMIT_PER_OPERATOR: "3",
        SIGNIN_RATE_LIMIT_WINDOW_MS: "60000",
        JOB_MIN_TIER: "block_root=1,single_tx_block_root=1,empty_block_root=1",
      },
    }),
    // A second deployment: same chain, its own verifying contract and its own database.
    startStack({ env: { VERIFYING_CONTRACT: otherContract } }),
  ]);
}, 60_000);
afterAll(async () => {
  await Promise.all([stack?.close(), other?.close()]);
});

/** Sends a body as is and returns status, headers and the parsed answer. */
async function send(target: Stack | Relay, method: "POST" | "DELETE", url: string, body: unknown) {
  const app = "relay" in target ? target.relay.app : target.app;
  const res = await app.inject({
    method,
    url,
    headers: { "content-type": "application/json" },
    payload: JSON.stringify(body),
  });
  return { status: res.statusCode, headers: res.headers, body: JSON.parse(res.body) };
}

async function signedLogin(
  operator: LocalAccount,
  workerId: string,
  terms: Partial<Pick<WorkerLoginJson, "capacity" | "jobTypes" | "tier" | "issuedAt">> = {},
  signingDomain: typeof testDomain | typeof aztecDomain = domain,
) {
  const login = newWorkerLogin({
    operator: operator.address,
    workerId,
    capacity: terms.capacity ?? 1,
    jobTypes: terms.jobTypes ?? allJobTypes,
    ...(terms.tier !== undefined ? { tier: terms.tier } : {}),
    ...(terms.issuedAt !== undefined ? { issuedAt: terms.issuedAt } : {}),
  });
  return { login, signature: await signWorkerLogin(operator, signingDomain, login) };
}

/** A proven identity's count in its rate-limit window (null: none, the key does not exist). */
async function limitCount(scope: "bids" | "signins", who: LocalAccount) {
  const key = `${stack.prefix}:rl:${scope}:${who.address.toLowerCase()}`;
  const n = await stack.relay.ctx.fabric.redis.hget(key, "n");
  return n === null ? null : Number(n);
}
const bidCount = (who: LocalAccount) => limitCount("bids", who);
const signinCount = (who: LocalAccount) => limitCount("signins", who);

async function openBidding(blockNumber: number) {
  const open = await openAuction(blockNumber);
  await stack.client.openAuction(open.auction, open.txs, open.signature);
}

describe("domain binding", () => {
  const unboundEnv = {
    REDIS_URL: "redis://127.0.0.1:1",
    DATABASE_URL: "postgresql://nobody@127.0.0.1:1/none",
  };

  it("without CHAIN_ID and VERIFYING_CONTRACT the relay and the aggregator refuse to start", async () => {
    const relay = createRelay(parseEnv(relayEnv, unboundEnv));
    await expect(relay).rejects.toBeInstanceOf(ConfigError);
    await expect(relay).rejects.toThrow(/CHAIN_ID and VERIFYING_CONTRACT are required/);
    const aggregator = createAggregator(parseEnv(aggregatorEnv, unboundEnv));
    await expect(aggregator).rejects.toBeInstanceOf(ConfigError);
    await expect(aggregator).rejects.toThrow(/EIP712_LEGACY_DOMAIN=true/);
  });

  it("EIP712_LEGACY_DOMAIN=true starts on the two-field domain, with a warning that Aztec quotes replay", async () => {
    const warn = vi.spyOn(console, "warn").mockImplementation(() => {});
    let legacy: Relay | undefined;
    try {
      const env = { ...stack.relay.env, CHAIN_ID: undefined, VERIFYING_CONTRACT: undefined };
      legacy = await createRelay({ ...env, EIP712_LEGACY_DOMAIN: true }, { db: stack.db });
      expect(legacy.ctx.domain).toEqual({ name: "Aztec Rollup", version: "1" });
      expect(warn).toHaveBeenCalledWith(expect.stringMatching(/signed\s+for Aztec.*replay/s));
    } finally {
      warn.mockRestore();
      await legacy?.close();
    }
  });

  it("a quote signed for Aztec's two-field domain is not a bid here (401 BAD_SIGNATURE)", async () => {
    const prover = account(0xa101);
    await stack.admin.deposit(prover.address, 1_000_000n);
    await openBidding(11);
    const { quote } = await signedBid(prover, 11);
    const aztecSignature = await signQuote(prover, aztecDomain, quote);
    const before = await snapshot(stack);
    const res = await send(stack, "POST", "/v1/bids", { quote, signature: aztecSignature });
    expect(res.status).toBe(401);
    expect(res.body.error.code).toBe("BAD_SIGNATURE");
    expect(await snapshot(stack)).toEqual(before);
    // The same terms signed for this relay's domain are a bid.
    const own = await signQuote(prover, testDomain, quote);
    expect((await send(stack, "POST", "/v1/bids", { quote, signature: own })).status).toBe(202);
  });

  it("a WorkerLogin signed for one relay is refused by a relay with another domain", async () => {
    const operator = account(0xa102);
    const body = await signedLogin(operator, "roamer");
    const before = await snapshot(other);
    const res = await send(other, "POST", "/v1/workers/sessions", body);
    expect(res.status).toBe(401);
    expect(res.body.error.code).toBe("BAD_SIGNATURE");
    expect(await snapshot(other)).toEqual(before);
    // The relay it was signed for accepts it.
    expect((await send(stack, "POST", "/v1/workers/sessions", body)).status).toBe(201);
    expect((await other.client.info()).domain.verifyingContract).toBe(otherContract);
    expect((await stack.client.info()).domain.verifyingContract).toBe(TEST_VERIFYING_CONTRACT);
  });
});

describe("bid cancellations", () => {
  const prover = account(0xa201);
  const rival = account(0xa202);
  beforeAll(async () => {
    await stack.admin.deposit(prover.address, 1_000_000n);
    await stack.admin.deposit(rival.address, 1_000_000n);
    await openBidding(21);
  });

  async function cancellation(bidId: `0x${string}`, issuedAt = Date.now(), who = prover) {
    const signature = await signBidCancellation(who, domain, {
      bidId,
      prover: who.address,
      issuedAt,
    });
    return { bidId, issuedAt, signature };
  }

  it("a replayed cancellation does not withdraw the prover's next bid (409 AUTHORIZATION_REPLAYED)", async () => {
    const first = await signedBid(prover, 21, { basisPointFee: 1500 });
    const { bidId } = await stack.client.submitBid(first.quote, first.signature);
    const cancel = await cancellation(bidId as `0x${string}`);
    const url = `/v1/bids/21/${prover.address}`;
    const done = await send(stack, "DELETE", url, cancel);
    expect(done.status).toBe(200);
    expect(done.body).toEqual({ bidId, status: "cancelled" });
    // The prover bids again; the captured cancellation is replayed.
    const next = await signedBid(prover, 21, { basisPointFee: 1400 });
    const second = await stack.client.submitBid(next.quote, next.signature);
    const before = await snapshot(stack);
    const replay = await send(stack, "DELETE", url, cancel);
    expect(replay.status).toBe(409);
    expect(replay.body.error.code).toBe("AUTHORIZATION_REPLAYED");
    expect(await snapshot(stack)).toEqual(before);
    const bid = await stack.db.prisma.bid.findUnique({ where: { id: second.bidId } });
    expect(bid?.status).toBe("active");
  });

  it("a cancellation issued in the future, even a second ahead, is refused (401 ISSUED_IN_FUTURE) and changes nothing", async () => {
    const quote = await signedBid(prover, 21, { basisPointFee: 1300 });
    const { bidId } = await stack.client.submitBid(quote.quote, quote.signature);
    const url = `/v1/bids/21/${prover.address}`;
    const before = await snapshot(stack);
    for (const aheadMs of [4 * 60_000, 25_000, 1_000]) {
      const future = await cancellation(bidId as `0x${string}`, Date.now() + aheadMs);
      const res = await send(stack, "DELETE", url, future);
      expect([res.status, res.body.error.code], `${aheadMs} ms ahead`).toEqual([
        401,
        "ISSUED_IN_FUTURE",
      ]);
    }
    expect(await snapshot(stack)).toEqual(before);
    // Signed now (by the relay's clock, or behind it) it withdraws the bid.
    const signedNow = await cancellation(bidId as `0x${string}`, Date.now());
    expect((await send(stack, "DELETE", url, signedNow)).status).toBe(200);
  });

  it("the SDK's signed cancellation is never ahead of the signer's clock and withdraws the bid", async () => {
    const quote = await signedBid(prover, 21, { basisPointFee: 1350 });
    const { bidId } = await stack.client.submitBid(quote.quote, quote.signature);
    const body = await signedBidCancellation(prover, domain, {
      bidId: bidId as `0x${string}`,
      prover: prover.address,
    });
    expect(body.issuedAt).toBeLessThanOrEqual(Date.now());
    const res = await stack.client.cancelBid(21, prover.address, body);
    expect(res).toEqual({ bidId, status: "cancelled" });
  });

  it("a cancellation naming a bid that is not the prover's open bid is refused (404 BID_NOT_FOUND)", async () => {
    const theirs = await signedBid(rival, 21, { basisPointFee: 1200 });
    const { bidId: rivalBid } = await stack.client.submitBid(theirs.quote, theirs.signature);
    const mine = await signedBid(prover, 21, { basisPointFee: 1250 });
    const { bidId: myBid } = await stack.client.submitBid(mine.quote, mine.signature);
    await openBidding(22);
    const before = await snapshot(stack);
    // The prover signs a cancellation of the rival's bid: it names a bid that is not its own.
    const notMine = await cancellation(rivalBid as `0x${string}`);
    const a = await send(stack, "DELETE", `/v1/bids/21/${prover.address}`, notMine);
    expect([a.status, a.body.error.code]).toEqual([404, "BID_NOT_FOUND"]);
    // Its own bid, but the path names another block.
    const wrongBlock = await cancellation(myBid as `0x${string}`);
    const b = await send(stack, "DELETE", `/v1/bids/22/${prover.address}`, wrongBlock);
    expect([b.status, b.body.error.code]).toEqual([404, "BID_NOT_FOUND"]);
    // Signed by the prover, sent under the rival's address: the signature does not match.
    const c = await send(stack, "DELETE", `/v1/bids/21/${rival.address}`, notMine);
    expect([c.status, c.body.error.code]).toEqual([401, "BAD_SIGNATURE"]);
    expect(await snapshot(stack)).toEqual(before);
  });

  it("the old cancellation shape (no bidId) is refused (400 VALIDATION_FAILED)", async () => {
    const before = await snapshot(stack);
    const res = await send(stack, "DELETE", `/v1/bids/21/${prover.address}`, {
      issuedAt: Date.now(),
      signature: `0x${"11".repeat(65)}`,
    });
    expect([res.status, res.body.error.code]).toEqual([400, "VALIDATION_FAILED"]);
    expect(await snapshot(stack)).toEqual(before);
  });
});

describe("worker logins", () => {
  it("one signed login opens one session, on this relay or another sharing its database (409 AUTHORIZATION_REPLAYED)", async () => {
    const operator = account(0xa301);
    const body = await signedLogin(operator, "once", { capacity: 2 });
    const first = await send(stack, "POST", "/v1/workers/sessions", body);
    expect(first.status).toBe(201);
    const before = await snapshot(stack);
    const again = await send(stack, "POST", "/v1/workers/sessions", body);
    expect([again.status, again.body.error.code]).toEqual([409, "AUTHORIZATION_REPLAYED"]);
    const second = await createRelay(stack.relay.env, { db: stack.db });
    try {
      const elsewhere = await send(second, "POST", "/v1/workers/sessions", body);
      expect([elsewhere.status, elsewhere.body.error.code]).toEqual([
        409,
        "AUTHORIZATION_REPLAYED",
      ]);
    } finally {
      await second.close();
    }
    expect(await snapshot(stack)).toEqual(before);
    const sessions = await stack.db.prisma.workerSession.findMany({
      where: { operator: operator.address },
    });
    expect(sessions).toHaveLength(1);
  });

  it("the session's terms are the signed ones: altering capacity, job types or tier breaks the signature", async () => {
    const operator = account(0xa302);
    const { login, signature } = await signedLogin(operator, "terms", {
      capacity: 1,
      jobTypes: ["base"],
      tier: 0,
    });
    const before = await snapshot(stack);
    for (const altered of [
      { ...login, capacity: 64 },
      { ...login, jobTypes: allJobTypes },
      { ...login, tier: 9 },
      { ...login, workerId: "other" },
    ]) {
      const res = await send(stack, "POST", "/v1/workers/sessions", { login: altered, signature });
      expect([res.status, res.body.error.code]).toEqual([401, "BAD_SIGNATURE"]);
    }
    expect(await snapshot(stack)).toEqual(before);
  });

  it("a login issued in the future is refused (401 ISSUED_IN_FUTURE); a few seconds of clock skew are allowed", async () => {
    const operator = account(0xa303);
    const body = await signedLogin(operator, "early", { issuedAt: Date.now() + 4 * 60_000 });
    const before = await snapshot(stack);
    const res = await send(stack, "POST", "/v1/workers/sessions", body);
    expect([res.status, res.body.error.code]).toEqual([401, "ISSUED_IN_FUTURE"]);
    expect(await snapshot(stack)).toEqual(before);
    const skewed = await signedLogin(operator, "skewed", { issuedAt: Date.now() + 5_000 });
    expect((await send(stack, "POST", "/v1/workers/sessions", skewed)).status).toBe(201);
  });

  it("unsigned hardware Postgres cannot store (a NUL, a lone surrogate) is refused (400 VALIDATION_FAILED), opening and spending nothing", async () => {
    const operator = account(0xa305);
    const body = await signedLogin(operator, "hw");
    const before = await snapshot(stack);
    const got: Record<string, unknown> = {};
    for (const [name, hardware] of Object.entries({
      nulInValue: { note: "a\u0000b" },
      nulInKey: { "a\u0000": 1 },
      loneHighSurrogate: { note: "x\ud800" },
      loneLowSurrogateInKey: { "\udc00": "x" },
    })) {
      const res = await send(stack, "POST", "/v1/workers/sessions", { ...body, hardware });
      got[name] = [res.status, res.body.error?.code];
    }
    expect(got).toEqual({
      nulInValue: [400, "VALIDATION_FAILED"],
      nulInKey: [400, "VALIDATION_FAILED"],
      loneHighSurrogate: [400, "VALIDATION_FAILED"],
      loneLowSurrogateInKey: [400, "VALIDATION_FAILED"],
    });
    expect(await snapshot(stack)).toEqual(before);
    expect(await signinCount(operator)).toBeNull();
    // The same login with text Postgres stores (a surrogate pair is one character) opens a session.
    const ok = await send(stack, "POST", "/v1/workers/sessions", {
      ...body,
      hardware: { cores: 8, note: "GPU \u{1F680}" },
    });
    expect(ok.status).toBe(201);
  });

  it("unsigned hardware is kept small: too many fields or too long a key is refused, opening nothing", async () => {
    // Anyone may sign in, and the hardware is stored with the session and listed publicly: a
    // megabyte of it per sign-in would grow the database and every GET /v1/workers page.
    const operator = account(0xa306);
    const body = await signedLogin(operator, "hw-size");
    const before = await snapshot(stack);
    const many = Object.fromEntries(Array.from({ length: 33 }, (_, i) => [`k${i}`, i]));
    for (const hardware of [many, { ["k".repeat(65)]: 1 }, { ["k".repeat(900_000)]: 1 }]) {
      const res = await send(stack, "POST", "/v1/workers/sessions", { ...body, hardware });
      expect([res.status, res.body.error?.code]).toEqual([400, "VALIDATION_FAILED"]);
    }
    expect(await snapshot(stack)).toEqual(before);
    const most = Object.fromEntries(
      Array.from({ length: 32 }, (_, i) => [`k${i}`.padEnd(64, "x"), i]),
    );
    expect(
      (await send(stack, "POST", "/v1/workers/sessions", { ...body, hardware: most })).status,
    ).toBe(201);
  });

  it("the old login shape (hardware inside, no tier or nonce) is refused (400 VALIDATION_FAILED)", async () => {
    const operator = account(0xa304);
    const before = await snapshot(stack);
    const res = await send(stack, "POST", "/v1/workers/sessions", {
      login: {
        operator: operator.address,
        workerId: "legacy",
        issuedAt: Date.now(),
        capacity: 1,
        jobTypes: ["base"],
        hardware: {},
      },
      signature: `0x${"11".repeat(65)}`,
    });
    expect([res.status, res.body.error.code]).toEqual([400, "VALIDATION_FAILED"]);
    expect(await snapshot(stack)).toEqual(before);
  });
});

describe("abuse controls keyed on proven identity", () => {
  it("forged bids naming a rival never spend the rival's bid allowance", async () => {
    const rival = account(0xa401);
    const forger = account(0xa402);
    await stack.admin.deposit(rival.address, 1_000_000n);
    await openBidding(41);
    const before = await snapshot(stack);
    for (let i = 0; i < 20; i++) {
      // The rival's name, the forger's key.
      const { quote } = await signedBid(rival, 41, { basisPointFee: 100 + i });
      const signature = await signQuote(forger, domain, quote);
      const res = await send(stack, "POST", "/v1/bids", { quote, signature });
      expect([res.status, res.body.error.code]).toEqual([401, "BAD_SIGNATURE"]);
    }
    expect(await snapshot(stack)).toEqual(before);
    const genuine = await signedBid(rival, 41, { basisPointFee: 900 });
    expect((await send(stack, "POST", "/v1/bids", genuine)).status).toBe(202);
  });

  it("sign-ins are limited per operator (recovered): 429 with Retry-After; forged, replayed and limited logins spend nothing", async () => {
    const operator = account(0xa403);
    const rival = account(0xa404);
    // Forged logins naming the rival, and replays of one captured login of the rival.
    const captured = await signedLogin(rival, "captured");
    expect((await send(stack, "POST", "/v1/workers/sessions", captured)).status).toBe(201);
    for (let i = 0; i < 5; i++) {
      const { login } = await signedLogin(rival, `forged-${i}`);
      const forged = await signWorkerLogin(operator, domain, login);
      const f = await send(stack, "POST", "/v1/workers/sessions", { login, signature: forged });
      expect(f.status).toBe(401);
      const r = await send(stack, "POST", "/v1/workers/sessions", captured);
      expect(r.status).toBe(409);
    }
    // The rival still has its allowance (3 per window, one used by the captured login).
    for (const id of ["r1", "r2"]) {
      expect(
        (await send(stack, "POST", "/v1/workers/sessions", await signedLogin(rival, id))).status,
      ).toBe(201);
    }
    // The operator's own sign-ins: three, then 429, and the refused one leaves no session.
    for (const id of ["o1", "o2", "o3"]) {
      expect(
        (await send(stack, "POST", "/v1/workers/sessions", await signedLogin(operator, id))).status,
      ).toBe(201);
    }
    const before = await snapshot(stack);
    const limited = await send(
      stack,
      "POST",
      "/v1/workers/sessions",
      await signedLogin(operator, "o4"),
    );
    expect([limited.status, limited.body.error.code]).toEqual([429, "RATE_LIMITED"]);
    expect(Number(limited.headers["retry-after"])).toBeGreaterThan(0);
    expect(await snapshot(stack)).toEqual(before);
    // The refused sign-in is not counted either: the window holds the three that were let in.
    expect(await signinCount(operator)).toBe(3);
  });
});

describe("refused requests spend no allowance", () => {
  it("a bid the write refuses (422 INSUFFICIENT_COLLATERAL, 409 BID_SUPERSEDED) leaves the prover's count as it was", async () => {
    const prover = account(0xa411);
    await openBidding(42);
    // Never deposited: the write refuses the bond.
    const poor = await signedBid(prover, 42, { basisPointFee: 900 });
    const before = await snapshot(stack);
    const refused = await send(stack, "POST", "/v1/bids", poor);
    expect([refused.status, refused.body.error.code]).toEqual([422, "INSUFFICIENT_COLLATERAL"]);
    expect(await snapshot(stack)).toEqual(before);
    expect(await bidCount(prover)).toBeNull();
    // Two accepted bids count two; the superseded first one sent again counts nothing.
    await stack.admin.deposit(prover.address, 1_000_000n);
    const first = await signedBid(prover, 42, { basisPointFee: 800 });
    const second = await signedBid(prover, 42, { basisPointFee: 700 });
    expect((await send(stack, "POST", "/v1/bids", first)).status).toBe(202);
    expect((await send(stack, "POST", "/v1/bids", second)).status).toBe(202);
    const superseded = await send(stack, "POST", "/v1/bids", first);
    expect([superseded.status, superseded.body.error.code]).toEqual([409, "BID_SUPERSEDED"]);
    expect(await bidCount(prover)).toBe(2);
  });

  it("a sign-in refused inside its transaction (a nonce used meanwhile elsewhere) leaves the operator's count as it was", async () => {
    const operator = account(0xa412);
    const body = await signedLogin(operator, "raced");
    expect((await send(stack, "POST", "/v1/workers/sessions", body)).status).toBe(201);
    expect(await signinCount(operator)).toBe(1);
    // Another relay sharing the database records the nonce between this relay's check and its
    // insert: the check sees nothing, the insert finds the nonce used.
    const check = vi.spyOn(stack.db.prisma.loginNonce, "findUnique").mockResolvedValueOnce(null);
    try {
      const before = await snapshot(stack);
      const res = await send(stack, "POST", "/v1/workers/sessions", body);
      expect([res.status, res.body.error.code]).toEqual([409, "AUTHORIZATION_REPLAYED"]);
      expect(check).toHaveBeenCalled();
      expect(await snapshot(stack)).toEqual(before);
    } finally {
      check.mockRestore();
    }
    expect(await signinCount(operator)).toBe(1);
  });
});

describe("hardware tiers", () => {
  it("a worker never leases a job above its signed tier; GET /v1/workers shows tiers", async () => {
    const op = account(0xa501);
    await stack.admin.deposit(op.address, 1_000_000n);
    // 2 txs: block_root(0,0) <- base(1,0), base(1,1); JOB_MIN_TIER puts block_root at tier 1.
    await openBlock(stack, 51, { txCount: 2, winner: op });
    const small = await signIn(stack, op, "small", { capacity: 2, tier: 0 });
    const big = await signIn(stack, op, "big", { capacity: 1, tier: 1 });
    // The tier-0 worker proves both bases.
    for (let i = 0; i < 2; i++) {
      const job = (await small.client.lease(5000))!;
      expect(job.type).toBe("base");
      await small.client.submitResult(job.id, proofOf(job));
    }
    // The root is ready: the tier-1 worker gets it, hands it back, and so it is queued again.
    const root = (await big.client.lease(10_000))!;
    expect(root.type).toBe("block_root");
    await big.client.failJob(root.id, "handing back", true);
    // Ready and queued, yet not offered to the tier-0 worker, however long it waits.
    expect(await small.client.lease(1000)).toBeNull();
    const again = (await big.client.lease(10_000))!;
    expect(again.id).toBe(root.id);
    await big.client.submitResult(again.id, proofOf(again));

    const listed = await stack.relay.app.inject({
      method: "GET",
      url: `/v1/workers?operator=${op.address}`,
    });
    const items = (JSON.parse(listed.body) as { items: { workerId: string; tier: number }[] })
      .items;
    const tiers = Object.fromEntries(items.map((w) => [w.workerId, w.tier]));
    expect(tiers).toEqual({ small: 0, big: 1 });
    // The block is settled before the next test, whose snapshots the background payout of a
    // proven block would otherwise race.
    await eventually(async () => (await stack.client.getBlock(51)).stage === "paid");
  });

  it("a sign-in whose tier allows none of its declared job types is refused (422 TIER_TOO_LOW)", async () => {
    const op = account(0xa502);
    const body = await signedLogin(op, "roots-only", { jobTypes: ["block_root"], tier: 0 });
    const before = await snapshot(stack);
    const res = await send(stack, "POST", "/v1/workers/sessions", body);
    expect([res.status, res.body.error.code]).toEqual([422, "TIER_TOO_LOW"]);
    expect(await snapshot(stack)).toEqual(before);
    const err = await relayError(
      stack.client.createSession(body.login, await signWorkerLogin(op, domain, body.login)),
    );
    expect(err).toEqual({ status: 422, code: "TIER_TOO_LOW" });
  });
});
