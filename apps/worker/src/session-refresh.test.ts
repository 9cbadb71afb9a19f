// A worker whose results keep bringing its next job signs in again before its session expires,
// rather than run jobs under it until the relay refuses the session (and the job in flight).
import { expect, it } from "vitest";
import { simBackend } from "./backends/sim.ts";
import { baseJobs, FakeRelay } from "./testing/fake-relay.ts";
import { poolsStoppedAfterEach, testOperator } from "./testing/pools.ts";
import { sleep } from "./timing.ts";
import type { WorkerEvent } from "./types.ts";

const start = poolsStoppedAfterEach();

it("signs in again before its session expires while results keep bringing the next job", async () => {
  const relay = new FakeRelay(testOperator);
  relay.add(...baseJobs(1, 2000));
  const TTL = 1500;
  // The relay's sessions last TTL ms, then every call with them answers 401 SESSION_EXPIRED.
  const fetch: typeof globalThis.fetch = async (input, init) => {
    const res = await relay.fetch(input, init);
    if (String(input).endsWith("/v1/workers/sessions") && res.status === 201) {
      const body = (await res.json()) as { token: string; expiresAt: number; sessionId: string };
      body.expiresAt = Date.now() + TTL;
      setTimeout(() => {
        relay.sessions.get(body.token)!.expired = true;
      }, TTL);
      return new Response(JSON.stringify(body), { status: 201 });
    }
    return res;
  };
  const events: WorkerEvent[] = [];
  const pool = await start({
    backend: simBackend({ durationsMs: { base: 20 } }),
    waitMs: 50,
    fetch,
    onEvent: (e) => events.push(e),
  });
  await sleep(3 * TTL + 500); // three session lifetimes
  await pool.stop({ graceMs: 0 });
  expect(events.filter((e) => e.type === "lost")).toEqual([]);
  expect(events.filter((e) => e.type === "signed_in").length).toBeGreaterThanOrEqual(3);
  expect(events.some((e) => e.type === "leased" && e.via === "result")).toBe(true);
  expect(pool.stats().proven).toBeGreaterThan(0);
}, 20_000);
