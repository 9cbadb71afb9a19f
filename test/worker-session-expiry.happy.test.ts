// A worker pool on a real relay (Postgres, Redis) whose sessions last a couple of seconds: the
// workers run across several session expiries, getting most jobs with their results' answers,
// and lose no job, and no lease lapses.
import { simBackend, startWorkers, type WorkerEvent } from "@prover-boost/worker";
import { afterAll, beforeAll, expect, it } from "vitest";
import { type Stack, startStack } from "./harness.ts";
import { openBlock } from "./support/blocks.ts";

const TTL_MS = 2000;
const key = `0x${"77".repeat(32)}` as const;
let stack: Stack;
beforeAll(async () => {
  stack = await startStack({ env: { SESSION_TTL_MS: String(TTL_MS) } });
}, 60_000);
afterAll(async () => {
  await stack?.close();
});

it("runs across several session expiries without losing a job or lapsing a lease", async () => {
  await openBlock(stack, 1, { txCount: 256 });
  const events: WorkerEvent[] = [];
  const ms = 100;
  const pool = await startWorkers({
    relayUrl: stack.url,
    operatorKey: key,
    workers: 2,
    backend: simBackend({
      durationsMs: {
        base: ms,
        merge: ms,
        block_root: ms,
        single_tx_block_root: ms,
        empty_block_root: ms,
      },
    }),
    waitMs: 200,
    namePrefix: "expiry",
    onEvent: (e) => events.push(e),
  });
  await new Promise((r) => setTimeout(r, 4 * TTL_MS));
  await pool.stop({ graceMs: 30_000 });
  const tree = await stack.client.getTree(1);
  const lapses = (tree.nodes as { lapses?: number }[]).reduce((n, x) => n + (x.lapses ?? 0), 0);
  expect(events.filter((e) => e.type === "lost")).toEqual([]);
  expect(lapses).toBe(0);
  // Each worker signed in again at least once across the expiries, and kept proving.
  expect(events.filter((e) => e.type === "signed_in").length).toBeGreaterThanOrEqual(4);
  expect(events.some((e) => e.type === "leased" && e.via === "result")).toBe(true);
  expect(pool.stats().proven).toBeGreaterThan(0);
}, 60_000);
