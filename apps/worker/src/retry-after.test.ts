// A Retry-After of 0 (or an HTTP date already past) never makes the worker try again with no pause:
// signing in, leasing and handing in a result all wait at least the ordinary backoff.
import { expect, it } from "vitest";
import { simBackend } from "./backends/sim.ts";
import { baseJobs, FakeRelay } from "./testing/fake-relay.ts";
import { poolsStoppedAfterEach, testOperator } from "./testing/pools.ts";
import { sleep } from "./timing.ts";
import type { WorkerEvent } from "./types.ts";

const start = poolsStoppedAfterEach();

/** A 503 that asks to come back after `retryAfter`. */
const unavailable = (retryAfter: string) =>
  new Response(
    JSON.stringify({ error: { code: "UNAVAILABLE", message: "busy", requestId: "r" } }),
    { status: 503, headers: { "content-type": "application/json", "retry-after": retryAfter } },
  );

/**
 * Runs one worker against `relay`, with requests matching `route` answered by `unavailable`, for
 * a second after the first of them; returns how many there were and the retries announced.
 */
async function attemptsInASecond(relay: FakeRelay, op: string, route: RegExp, retryAfter: string) {
  const attempts: number[] = [];
  const fetch: typeof globalThis.fetch = async (input, init) => {
    if (route.test(String(input))) {
      attempts.push(Date.now());
      return unavailable(retryAfter);
    }
    return relay.fetch(input, init);
  };
  const events: WorkerEvent[] = [];
  await start({
    backend: simBackend({ durationsMs: { base: 0 } }),
    waitMs: 50,
    fetch,
    onEvent: (e) => events.push(e),
  });
  for (let i = 0; i < 400 && attempts.length === 0; i++) await sleep(25);
  expect(attempts.length).toBeGreaterThan(0);
  const first = attempts[0]!;
  await sleep(1000);
  const inASecond = attempts.filter((t) => t - first <= 1000).length;
  const retries = events.flatMap((e) =>
    e.type === "relay_error" && e.op === op ? [e.retryInMs] : [],
  );
  return { inASecond, retries };
}

it("signs in again after a pause when the relay says Retry-After: 0", async () => {
  const relay = new FakeRelay(testOperator);
  const { inASecond, retries } = await attemptsInASecond(
    relay,
    "sign_in",
    /\/v1\/workers\/sessions$/,
    "0",
  );
  // The ordinary backoff allows a handful in a second; no pause at all would make thousands.
  expect(inASecond).toBeLessThanOrEqual(10);
  expect(retries.length).toBeGreaterThan(0);
  for (const ms of retries) expect(ms).toBeGreaterThanOrEqual(100);
});

it("leases again after a pause when Retry-After is a date already past", async () => {
  const relay = new FakeRelay(testOperator);
  const past = new Date(Date.now() - 60_000).toUTCString();
  const { inASecond, retries } = await attemptsInASecond(
    relay,
    "lease",
    /\/v1\/jobs\/lease$/,
    past,
  );
  expect(inASecond).toBeLessThanOrEqual(10);
  expect(retries.length).toBeGreaterThan(0);
  for (const ms of retries) expect(ms).toBeGreaterThanOrEqual(100);
});

it("sends a result again after a pause when the relay says Retry-After: 0", async () => {
  const relay = new FakeRelay(testOperator);
  relay.add(...baseJobs(1, 1));
  const { inASecond, retries } = await attemptsInASecond(
    relay,
    "result",
    /\/v1\/jobs\/[^/]+\/result$/,
    "0",
  );
  expect(inASecond).toBeLessThanOrEqual(10);
  expect(retries.length).toBeGreaterThan(0);
  for (const ms of retries) expect(ms).toBeGreaterThanOrEqual(100);
});
