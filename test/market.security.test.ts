// Hostile clients against the market on real Redis and Postgres: replays, quotes signed for
// another domain, oversized bodies, floods. Each refusal has its code and changes nothing.
import { accounts, balanceOf } from "@prover-boost/db";
import { type QuoteJson, signAuction, signQuote } from "@prover-boost/sdk";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { account, currentSlot, openAuction as fixtureAuction, snapshot } from "./fixtures.ts";
import { type Stack, sequencer, startStack } from "./harness.ts";

const chainId = 31337;
const verifyingContract = "0x5FbDB2315678afecb367f032d93F642f64180aa3" as const;
const fullDomain = {
  name: "Aztec Rollup",
  version: "1",
  chainId: BigInt(chainId),
  verifyingContract,
};
const prover = account(0xb1);

let stack: Stack;
beforeAll(async () => {
  stack = await startStack({
    env: {
      CHAIN_ID: String(chainId),
      VERIFYING_CONTRACT: verifyingContract,
      RATE_LIMIT_PER_PROVER: "8",
      RATE_LIMIT_WINDOW_MS: "60000",
      BODY_LIMIT_BYTES: "4096",
    },
  });
  await stack.admin.deposit(prover.address, 1_000_000n);
  const open = await fixtureAuction(7);
  // Re-sign under the four-field domain the relay is configured with.
  const signature = await signAuction(sequencer, fullDomain, open.auction);
  await stack.client.openAuction(open.auction, open.txs, signature);
});
afterAll(async () => stack?.close());

const quoteFor = (overrides: Partial<QuoteJson> = {}): QuoteJson => ({
  epochToProve: 7,
  validUntilSlot: currentSlot() + 100,
  bondAmount: "5000",
  prover: prover.address,
  basisPointFee: 1000,
  ...overrides,
});

async function post(url: string, payload: string) {
  const res = await stack.relay.app.inject({
    method: "POST",
    url,
    headers: { "content-type": "application/json" },
    payload,
  });
  return { status: res.statusCode, headers: res.headers, body: JSON.parse(res.body) };
}

describe("replay and domain separation", () => {
  it("the same signed quote twice is idempotent: same bidId, one reservation", async () => {
    const quote = quoteFor({ basisPointFee: 900 });
    const signature = await signQuote(prover, fullDomain, quote);
    const first = await stack.client.submitBid(quote, signature);
    const afterFirst = await snapshot(stack);
    const second = await stack.client.submitBid(quote, signature);
    expect(second.bidId).toBe(first.bidId);
    expect(await snapshot(stack)).toEqual(afterFirst);
    expect(await balanceOf(stack.db.prisma, accounts.reserved(prover.address))).toBe(5000n);
  });

  it.each([
    ["another chain id", { ...fullDomain, chainId: 1n }],
    [
      "another verifying contract",
      { ...fullDomain, verifyingContract: "0x0000000000000000000000000000000000000001" as const },
    ],
    ["the two-field domain", { name: "Aztec Rollup", version: "1" }],
  ])("a quote signed for %s does not verify (401 BAD_SIGNATURE)", async (_label, domain) => {
    const quote = quoteFor({ basisPointFee: 800 });
    const signature = await signQuote(prover, domain, quote);
    const before = await snapshot(stack);
    const res = await post("/v1/bids", JSON.stringify({ quote, signature }));
    expect(res.status).toBe(401);
    expect(res.body.error.code).toBe("BAD_SIGNATURE");
    expect(await snapshot(stack)).toEqual(before);
  });

  it("a replacement frees the old reservation; a superseded quote cannot come back", async () => {
    const q1 = quoteFor({ basisPointFee: 700, bondAmount: "7000" });
    const s1 = await signQuote(prover, fullDomain, q1);
    const q2 = quoteFor({ basisPointFee: 600, bondAmount: "6000" });
    const s2 = await signQuote(prover, fullDomain, q2);
    await stack.client.submitBid(q1, s1);
    expect(await balanceOf(stack.db.prisma, accounts.reserved(prover.address))).toBe(7000n);
    await stack.client.submitBid(q2, s2);
    expect(await balanceOf(stack.db.prisma, accounts.reserved(prover.address))).toBe(6000n);
    const before = await snapshot(stack);
    const res = await post("/v1/bids", JSON.stringify({ quote: q1, signature: s1 }));
    expect(res.status).toBe(409);
    expect(res.body.error.code).toBe("BID_SUPERSEDED");
    expect(await snapshot(stack)).toEqual(before);
  });
});

describe("limits", () => {
  it("a body over BODY_LIMIT_BYTES → 413 PAYLOAD_TOO_LARGE", async () => {
    const before = await snapshot(stack);
    const res = await post(
      "/v1/bids",
      JSON.stringify({ quote: quoteFor(), signature: `0x${"ab".repeat(4000)}` }),
    );
    expect(res.status).toBe(413);
    expect(res.body.error.code).toBe("PAYLOAD_TOO_LARGE");
    expect(await snapshot(stack)).toEqual(before);
  });

  it("a prover over its bid rate → 429 RATE_LIMITED with Retry-After, and the refused bids change nothing", async () => {
    const flooder = account(0xb2);
    await stack.admin.deposit(flooder.address, 1_000_000n);
    const statuses: number[] = [];
    let limitedResponse: Awaited<ReturnType<typeof post>> | null = null;
    for (let i = 0; i < 12; i++) {
      const quote = quoteFor({ prover: flooder.address, basisPointFee: 1000 + i });
      const signature = await signQuote(flooder, fullDomain, quote);
      const before = await snapshot(stack);
      const res = await post("/v1/bids", JSON.stringify({ quote, signature }));
      statuses.push(res.status);
      if (res.status === 429) {
        limitedResponse = res;
        expect(await snapshot(stack)).toEqual(before);
      }
    }
    expect(statuses.filter((s) => s === 202)).toHaveLength(8);
    expect(statuses.filter((s) => s === 429)).toHaveLength(4);
    expect(limitedResponse?.body.error.code).toBe("RATE_LIMITED");
    expect(Number(limitedResponse?.headers["retry-after"])).toBeGreaterThan(0);
    // Another prover from the same client address is not affected by this prover's limit.
    const bystander = account(0xb3);
    await stack.admin.deposit(bystander.address, 1_000_000n);
    const quote = quoteFor({ prover: bystander.address, basisPointFee: 500 });
    const signature = await signQuote(bystander, fullDomain, quote);
    expect((await post("/v1/bids", JSON.stringify({ quote, signature }))).status).toBe(202);
  });
});
