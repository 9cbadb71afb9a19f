// Attack: a sequencer opens an auction whose proofDeadline is 1 ms after bidding closes, so the
// winner cannot possibly prove in time and its bond is slashed. On main this was accepted (201).
// Now the relay requires MIN_PROVING_WINDOW_MS (default 60000) between the two: 400
// INVALID_SCHEDULE, nothing changes.
import { parseEnv, relayEnv } from "@prover-boost/config";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { openAuction, snapshot } from "./fixtures.ts";
import { type Stack, startStack } from "./harness.ts";

let stack: Stack;
const WINDOW = parseEnv(relayEnv, {}).MIN_PROVING_WINDOW_MS;

beforeAll(async () => {
  // The production default, which the harness otherwise lowers for short test auctions.
  stack = await startStack({ env: { MIN_PROVING_WINDOW_MS: String(WINDOW) } });
});
afterAll(async () => stack?.close());

async function open(blockNumber: number, windowMs: number) {
  const closes = Date.now() + 30_000;
  const o = await openAuction(blockNumber, {
    biddingClosesAt: closes,
    proofDeadline: closes + windowMs,
  });
  const res = await stack.relay.app.inject({
    method: "POST",
    url: "/v1/auctions",
    payload: o.body,
  });
  return { status: res.statusCode, body: JSON.parse(res.body) };
}

describe("minimum proving window", () => {
  it("proofDeadline 1 ms after the close is refused; the default window is accepted", async () => {
    expect(WINDOW).toBe(60_000);
    const before = await snapshot(stack);
    const tight = await open(50, 1);
    expect(tight.status).toBe(400);
    expect(tight.body.error.code).toBe("INVALID_SCHEDULE");
    const oneShort = await open(50, WINDOW - 1);
    expect(oneShort.status).toBe(400);
    expect(oneShort.body.error.code).toBe("INVALID_SCHEDULE");
    expect(await snapshot(stack)).toEqual(before);
    const exact = await open(50, WINDOW);
    expect(exact.status).toBe(201);
  });
});
