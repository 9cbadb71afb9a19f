// Attack: overflow the ledger. On main eight max-uint256 deposits to different provers
// succeeded and the ninth answered 500 (numeric overflow of the shared deposits account); an
// auction with a max-uint256 blockReward was accepted and its payout would overflow and retry
// forever with the bond locked. Now every amount is bounded by MAX_AMOUNT_WEI (and the totals
// from each source by LEDGER_SOURCE_CAP_WEI, within NUMERIC(78, 0)): 422 AMOUNT_TOO_LARGE,
// never 500, and nothing changes.
import { errorsOf, operations } from "@prover-boost/contract";
import { MAX_AMOUNT_WEI } from "@prover-boost/core";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { account, openAuction, signedBid, snapshot } from "./fixtures.ts";
import { ADMIN_TOKEN, type Stack, startStack } from "./harness.ts";
import { expectLedgerConsistent } from "./support/market-flow.ts";

const MAX_UINT256 = 2n ** 256n - 1n;
let stack: Stack;
beforeAll(async () => {
  stack = await startStack();
});
afterAll(async () => stack?.close());

async function post(url: string, payload: unknown, auth = false) {
  const res = await stack.relay.app.inject({
    method: "POST",
    url,
    payload: payload as object,
    headers: auth ? { authorization: `Bearer ${ADMIN_TOKEN}` } : {},
  });
  return { status: res.statusCode, body: JSON.parse(res.body) };
}

describe("bounded amounts", () => {
  it("nine max-uint256 deposits: every one 422 AMOUNT_TOO_LARGE, none 500, nothing changes", async () => {
    const before = await snapshot(stack);
    for (let i = 0; i < 9; i++) {
      const res = await post(
        "/v1/admin/deposits",
        { prover: account(0xd00 + i).address, amount: MAX_UINT256.toString() },
        true,
      );
      expect(res.status).toBe(422);
      expect(res.body.error.code).toBe("AMOUNT_TOO_LARGE");
    }
    expect(await snapshot(stack)).toEqual(before);
    // The bound itself is accepted.
    const ok = await post(
      "/v1/admin/deposits",
      { prover: account(0xd00).address, amount: MAX_AMOUNT_WEI.toString() },
      true,
    );
    expect(ok.status).toBe(201);
    await expectLedgerConsistent(stack.db.prisma);
  });

  it("a huge blockReward or minBond is refused at open, and a huge bond at bid, as both operations declare", async () => {
    const before = await snapshot(stack);
    for (const field of ["blockReward", "minBond"] as const) {
      const o = await openAuction(60, { [field]: MAX_UINT256.toString() });
      const res = await post("/v1/auctions", o.body);
      expect(res.status, field).toBe(422);
      expect(res.body.error.code).toBe("AMOUNT_TOO_LARGE");
    }
    expect(await snapshot(stack)).toEqual(before);
    const o = await openAuction(61, { blockReward: MAX_AMOUNT_WEI.toString() });
    expect((await post("/v1/auctions", o.body)).status).toBe(201);
    const prover = account(0xd00);
    const bid = await signedBid(prover, 61, { bondAmount: (MAX_AMOUNT_WEI + 1n).toString() });
    const mid = await snapshot(stack);
    const res = await post("/v1/bids", bid);
    expect(res.status).toBe(422);
    expect(res.body.error.code).toBe("AMOUNT_TOO_LARGE");
    expect(await snapshot(stack)).toEqual(mid);
    // The OpenAPI document lists the code for both operations.
    expect(errorsOf(operations.openAuction)).toContain("AMOUNT_TOO_LARGE");
    expect(errorsOf(operations.submitBid)).toContain("AMOUNT_TOO_LARGE");
  });
});
