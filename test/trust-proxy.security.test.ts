// X-Forwarded-For is believed only when TRUST_PROXY says whom to believe. Without it a client
// cannot dodge the per-IP rate limit by naming another address; behind a trusted proxy each
// client the proxy names has its own budget (rather than all sharing the proxy's).
import { afterEach, describe, expect, it } from "vitest";
import { type Stack, startStack } from "./harness.ts";

let stack: Stack | undefined;
afterEach(async () => {
  await stack?.close();
  stack = undefined;
});

/** Statuses of GET /v1/info over real HTTP, one per X-Forwarded-For value. */
async function statuses(s: Stack, forwardedFor: string[]): Promise<number[]> {
  const out: number[] = [];
  for (const xff of forwardedFor) {
    const res = await fetch(`${s.url}/v1/info`, { headers: { "x-forwarded-for": xff } });
    await res.arrayBuffer();
    out.push(res.status);
  }
  return out;
}

// A window far longer than the test, so no budget refills mid-test whatever the machine's speed.
const limits = { RATE_LIMIT_PER_IP: "2", RATE_LIMIT_WINDOW_MS: "600000" };
const clients = ["203.0.113.1", "203.0.113.2", "203.0.113.3", "203.0.113.4"];

describe("TRUST_PROXY", () => {
  it("unset: X-Forwarded-For is ignored and every request counts against the TCP peer", async () => {
    stack = await startStack({ aggregator: false, env: limits });
    expect(await statuses(stack, clients)).toEqual([200, 200, 429, 429]);
  });

  it("true: each forwarded client has its own budget", async () => {
    stack = await startStack({ aggregator: false, env: { ...limits, TRUST_PROXY: "true" } });
    expect(await statuses(stack, clients)).toEqual([200, 200, 200, 200]);
    // The same forwarded client is still limited.
    expect(await statuses(stack, ["198.51.100.9", "198.51.100.9", "198.51.100.9"])).toEqual([
      200, 200, 429,
    ]);
  });

  it("a list that does not include the peer: the header is not believed", async () => {
    stack = await startStack({
      aggregator: false,
      env: { ...limits, TRUST_PROXY: "10.0.0.0/8" },
    });
    expect(await statuses(stack, clients)).toEqual([200, 200, 429, 429]);
  });

  it("a list that includes the peer: the header is believed", async () => {
    stack = await startStack({
      aggregator: false,
      env: { ...limits, TRUST_PROXY: "10.0.0.0/8,127.0.0.1" },
    });
    expect(await statuses(stack, clients)).toEqual([200, 200, 200, 200]);
  });

  it("a hop count of 1: the nearest proxy (the peer) is believed", async () => {
    stack = await startStack({ aggregator: false, env: { ...limits, TRUST_PROXY: "1" } });
    expect(await statuses(stack, clients)).toEqual([200, 200, 200, 200]);
  });
});
