// Regression tests for bugs the relay fuzz (test/fuzz-*.security.test.ts) found, deterministic:
// router errors outside the error shape, cursor and filter overflows answered with 500, deposits
// past uint256. They run against the same stack as the fuzz.
import { describe, expect, it } from "vitest";
import { account } from "./fixtures.ts";
import { ADMIN_TOKEN } from "./harness.ts";
import { fx, UINT256_MAX, useFuzzStack } from "./support/fuzz-stack.ts";

useFuzzStack();

async function get(url: string) {
  const res = await fx.stack.relay.app.inject({ method: "GET", url });
  return { status: res.statusCode, body: JSON.parse(res.body) as { error?: unknown } };
}

const contractError = {
  error: {
    code: expect.stringMatching(/^[A-Z_]+$/),
    message: expect.any(String),
    requestId: expect.any(String),
  },
};

describe("regressions found by the fuzz", () => {
  it("a malformed percent-encoding in the path gets the contract's error body", async () => {
    const res = await get("/v1/blocks/%zz");
    expect(res.status).toBe(400);
    expect(res.body).toEqual(contractError);
  });

  it("a path parameter over 100 characters gets the contract's error body", async () => {
    const res = await get(`/v1/blocks/${"9".repeat(150)}`);
    expect(res.status).toBeLessThan(500);
    expect(res.body).toEqual(contractError);
  });

  it("a cursor whose timestamp is past int8 is a 400, not a 500 (data and workers)", async () => {
    for (const path of ["/v1/data/bids", "/v1/data/payouts", "/v1/data/penalties", "/v1/workers"]) {
      const res = await get(`${path}?cursor=99999999999999999999_x`);
      expect(res.status, path).toBe(400);
    }
  });

  it("GET /v1/data/auctions with a block or cursor past int4 is not a 500", async () => {
    for (const q of ["block=2147483648", "cursor=2147483648"]) {
      const res = await get(`/v1/data/auctions?${q}`);
      expect(res.status, q).toBeLessThan(500);
    }
  });

  it("deposits cannot push a balance past uint256 (nor overflow NUMERIC(78,0) into a 500)", async () => {
    const who = account(0xf5).address;
    const statuses: number[] = [];
    for (let i = 0; i < 10; i++) {
      const res = await fx.stack.relay.app.inject({
        method: "POST",
        url: "/v1/admin/deposits",
        headers: { authorization: `Bearer ${ADMIN_TOKEN}` },
        payload: { prover: who, amount: UINT256_MAX.toString() },
      });
      statuses.push(res.statusCode);
    }
    expect(statuses.every((s) => s < 500)).toBe(true);
    const view = await fx.stack.client.getProver(who);
    expect(BigInt(view.collateral.available)).toBeLessThanOrEqual(UINT256_MAX);
  });
});
