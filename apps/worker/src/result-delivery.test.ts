// Handing in a finished proof when the relay does not answer: the agent keeps sending it until the
// relay gives a definitive answer (here: accepts it), through an outage of several leases, and
// waits out a Retry-After the relay asks for.
import type { LeasedJob } from "@prover-boost/sdk";
import { expect, it } from "vitest";
import { simBackend } from "./backends/sim.ts";
import { baseJobs, FakeRelay } from "./testing/fake-relay.ts";
import { poolsStoppedAfterEach, testOperator } from "./testing/pools.ts";
import { sleep } from "./timing.ts";
import type { ProofBackend, WorkerEvent } from "./types.ts";

const start = poolsStoppedAfterEach();

/** A simulated backend that takes `relay` down as it starts a proof, done `ms` later. */
function downWhileProving(relay: FakeRelay, ms: number): ProofBackend {
  const sim = simBackend({ durationsMs: { base: 0 } });
  return {
    name: "slow",
    async prove(job: LeasedJob, signal: AbortSignal) {
      relay.down = true;
      if (ms > 0) await sleep(ms, signal);
      return sim.prove(job, signal);
    },
  };
}

it("keeps sending a finished proof through a relay outage of several leases", async () => {
  const relay = new FakeRelay(testOperator); // leases of 300 ms, kept through the outage
  relay.add(...baseJobs(1, 1));
  // The relay goes down while the job is proved; the proof is done during the outage.
  const events: WorkerEvent[] = [];
  await start({
    backend: downWhileProving(relay, 100),
    waitMs: 50,
    fetch: relay.fetch,
    onEvent: (e) => events.push(e),
  });
  await sleep(1500); // an outage of five leases (a relay restarting, Redis keeping its data)
  relay.down = false;
  for (let i = 0; i < 200 && !relay.accepted.has("1:0"); i++) await sleep(50);
  expect(events.filter((e) => e.type === "lost")).toEqual([]);
  expect(relay.accepted.has("1:0")).toBe(true);
}, 30_000);

it("waits out the relay's Retry-After before sending a result again", async () => {
  const relay = new FakeRelay(testOperator);
  relay.add(...baseJobs(1, 1));
  const resultsAt: number[] = [];
  const fetch: typeof globalThis.fetch = async (input, init) => {
    if (/\/v1\/jobs\/[^/]+\/result$/.test(String(input))) {
      resultsAt.push(Date.now());
      if (resultsAt.length === 1) {
        return new Response(
          JSON.stringify({ error: { code: "UNAVAILABLE", message: "busy", requestId: "r" } }),
          { status: 503, headers: { "content-type": "application/json", "retry-after": "1" } },
        );
      }
    }
    return relay.fetch(input, init);
  };
  await start({
    backend: simBackend({ durationsMs: { base: 0 } }),
    waitMs: 50,
    fetch,
  });
  for (let i = 0; i < 200 && !relay.accepted.has("1:0"); i++) await sleep(50);
  expect(relay.accepted.has("1:0")).toBe(true);
  expect(resultsAt.length).toBeGreaterThanOrEqual(2);
  expect(resultsAt[1]! - resultsAt[0]!).toBeGreaterThanOrEqual(1000);
}, 30_000);

it("drops a finished proof only after its retry budget, not tied to the lease", async () => {
  const relay = new FakeRelay(testOperator);
  relay.add(...baseJobs(1, 1));
  const events: WorkerEvent[] = [];
  await start({
    backend: downWhileProving(relay, 0), // and it stays down
    waitMs: 50,
    fetch: relay.fetch,
    resultRetryBudgetMs: 1500,
    onEvent: (e) => events.push(e),
  });
  for (let i = 0; i < 400 && !events.some((e) => e.type === "lost"); i++) await sleep(50);
  const lost = events.filter((e) => e.type === "lost");
  expect(lost).toHaveLength(1);
  expect(lost[0]).toMatchObject({ reason: expect.stringMatching(/could not deliver the result/) });
  // Retried past the lease (300 ms) and its second window, until the budget ran out.
  const tries = events.filter((e) => e.type === "relay_error" && e.op === "result").length;
  expect(tries).toBeGreaterThanOrEqual(2);
}, 30_000);

it("a stop whose drain ends while a result is unanswered offers it again and releases the job", async () => {
  const relay = new FakeRelay(testOperator);
  relay.add(...baseJobs(1, 1));
  // Every result goes unanswered (a relay stuck verifying, a connection dropped without a word):
  // each request settles only at its own deadline, the client's (15 s, or the stop's last offer).
  let unanswered = 0;
  let settled = 0;
  const fetch: typeof globalThis.fetch = async (input, init) => {
    if (/\/v1\/jobs\/[^/]+\/result$/.test(String(input))) {
      unanswered++;
      return new Promise<Response>((_, reject) => {
        init?.signal?.addEventListener("abort", () => {
          settled++;
          reject(init.signal!.reason);
        });
      });
    }
    return relay.fetch(input, init);
  };
  const pool = await start({
    backend: simBackend({ durationsMs: { base: 0 } }),
    waitMs: 50,
    fetch,
  });
  for (let i = 0; i < 200 && unanswered === 0; i++) await sleep(25);
  expect(unanswered).toBe(1);
  await pool.stop({ graceMs: 200 });
  // Released before the first result's deadline: the lease does not lapse with the agent gone.
  expect(relay.fails).toEqual([
    { id: "1:0", reason: "worker shutting down", retryable: true, shutdown: true },
  ]);
  // The first result let go as the drain ended (its connection is not held to its deadline, so
  // the agent's HTTP pool closes at once), then the last offer, after its 1 s.
  expect(unanswered).toBe(2);
  expect(settled).toBe(2);
}, 30_000);
