// Per-block handles on a real Redis: closing those of inactive blocks (and only those), keeping a
// block used since the caller's read began, a lease that outlives its block's handles, the keys
// a stalled check leaves of a removed queue, the handles of a block announced as upcoming (open
// before its first lease, kept through a hold), and the flow producer's reused queue handles.
import { randomBytes } from "node:crypto";
import { planTree } from "@prover-boost/core";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import type { QueueKind } from "./catalog.ts";
import { ProofFabric, UPCOMING_HOLD_MS } from "./fabric.ts";

const REDIS_URL = process.env.TEST_REDIS_URL ?? "redis://127.0.0.1:6379";
const prefix = `pbtest-${randomBytes(5).toString("hex")}`;
/** A relay's fabric (runs stalled checks) and an aggregator's (removes retired blocks). */
let relay: ProofFabric;
let aggregator: ProofFabric;
/** A read that began after every use so far, past the grace: closes every inactive block. */
const later = () => performance.now() + 60_000;

async function addBlock(blockNumber: number, txCount = 2) {
  await aggregator.addTree(
    blockNumber,
    planTree(txCount),
    () => 1,
    () => [],
  );
}

async function takeOne(blockNumber: number, token: string) {
  const { taken } = await relay.take(blockNumber, ["base"], token);
  expect(taken).not.toBeNull();
  return taken!;
}

async function keysOf(blockNumber: number): Promise<string[]> {
  return (await relay.redis.keys(`${prefix}:b${blockNumber}-*`)).sort();
}

async function until(fn: () => Promise<boolean>, timeoutMs = 20_000): Promise<void> {
  const end = Date.now() + timeoutMs;
  while (!(await fn())) {
    if (Date.now() > end) throw new Error("condition not met");
    await new Promise((r) => setTimeout(r, 50));
  }
}

beforeAll(async () => {
  const base = { redisUrl: REDIS_URL, prefix, leaseMs: 1000, subscribe: false };
  relay = await ProofFabric.open(base);
  aggregator = await ProofFabric.open({ ...base, checkStalled: false });
});
afterAll(async () => {
  await relay.close();
  await aggregator.obliterate();
  await aggregator.close();
});

describe("closing the handles of inactive blocks", () => {
  it("closes blocks missing from the active set and keeps the others", async () => {
    await addBlock(1);
    await addBlock(2);
    await takeOne(1, "t-1");
    await takeOne(2, "t-2");
    expect(relay.openHandles().blocks.sort()).toEqual([1, 2]);
    expect(await relay.closeInactive(new Set([2]), later())).toEqual([1]);
    expect(relay.openHandles().blocks).toEqual([2]);
    expect(relay.openHandles().fetchers).toBe(1);
  });

  it("keeps a block used after the caller began reading its active set", async () => {
    const readStartedAt = performance.now();
    await relay.getJob(2, "base", "2-1-0");
    expect(await relay.closeInactive(new Set(), readStartedAt)).toEqual([]);
    expect(relay.openHandles().blocks).toEqual([2]);
    expect(await relay.closeInactive(new Set(), later())).toEqual([2]);
    expect(relay.openHandles().blocks).toEqual([]);
  });

  it("lets a lease outlive its block's handles: they reopen and the job completes", async () => {
    await addBlock(3);
    const token = "t-3";
    const { job } = await takeOne(3, token);
    await relay.closeInactive(new Set(), later());
    expect(relay.openHandles().blocks).toEqual([]);
    const again = (await relay.getJob(3, "base", job.id!))!;
    await again.moveToCompleted({ proof: "0x01" }, token, false);
    expect(await again.getState()).toBe("completed");
    // Taking from the block reopens its fetcher, stalled check included.
    await takeOne(3, "t-3b");
    expect(relay.openHandles().fetchers).toBe(1);
    await relay.closeInactive(new Set(), later());
  });

  it("removes what a stalled check left of a retired queue, and nothing of a live one", async () => {
    await addBlock(4);
    await addBlock(5);
    await takeOne(4, "t-4");
    // The aggregator retires block 4, unfinished (a leased job, parents waiting for children),
    // while this relay's stalled check still runs on it: the check writes its marker (and the
    // queue's meta) again.
    await aggregator.retireBlock(4);
    await until(async () => (await keysOf(4)).some((k) => k.endsWith(":stalled-check")));
    // Block 5's job is leased only now: its lease (LEASE_MS) cannot run out before the close
    // below, however long the wait above took, so its stalled check finds nothing to move.
    await takeOne(5, "t-5");
    const live = await keysOf(5);
    expect(await relay.closeInactive(new Set(), later())).toEqual(expect.arrayContaining([4, 5]));
    expect(await keysOf(4)).toEqual([]);
    // Block 5's queue still has its jobs: closing this relay's handles left it as it was.
    expect(await keysOf(5)).toEqual(
      expect.arrayContaining(live.filter((k) => !k.endsWith("-check"))),
    );
    expect(await relay.getJob(5, "base", "5-1-0")).toBeDefined();
    // What the aggregator's start-up sweep sees: every block with queues, not the retired one.
    expect(await relay.blocksInRedis()).toEqual([1, 2, 3, 5]);
  });
});

describe("the flow producer's queue handles", () => {
  it("makes one per queue and reuses it; trees of more blocks than it keeps land in their own queues", async () => {
    const flow = (aggregator as unknown as { flow: { getBackend(): unknown } }).flow;
    const backend = flow.getBackend() as { forQueue(queue: string, prefix: string): unknown };
    expect(backend.forQueue("b2-base", prefix)).toBe(backend.forQueue("b2-base", prefix));
    expect(backend.forQueue("b2-base", prefix)).not.toBe(backend.forQueue("b2-merge", prefix));
    // 20 blocks of three queues each: more than the producer keeps, so handles are dropped and
    // made again on the way.
    const blocks = Array.from({ length: 20 }, (_, i) => 100 + i);
    for (const n of blocks) await addBlock(n, 3);
    for (const n of blocks) await addBlock(n, 3);
    for (const n of blocks) {
      expect(await relay.treeCounts(n)).toEqual({ jobs: 5, completed: 0 });
      const bases = await relay.redis.zcard(`${prefix}:b${n}-base:prioritized`);
      expect(bases).toBe(3);
    }
    for (const n of blocks) await aggregator.retireBlock(n);
  });
});

describe("a block announced as upcoming", () => {
  it("has its handles opened by a listening relay before its tree exists, kept through its hold, none after close", async () => {
    const listening = await ProofFabric.open({ redisUrl: REDIS_URL, prefix, leaseMs: 1000 });
    try {
      const prepared: Promise<void>[] = [];
      listening.events.on("upcoming", (n: number, kinds: readonly QueueKind[]) =>
        prepared.push(listening.prepareBlock(n, kinds)),
      );
      let woken = 0;
      listening.events.on("work", () => woken++);
      await aggregator.announceUpcoming(50);
      await until(async () => prepared.length === 1);
      await prepared[0];
      // All of its queues and fetchers, connected, and nobody woken: there is nothing to take.
      expect(listening.openHandles()).toEqual({ blocks: [50], queues: 3, fetchers: 3 });
      expect(woken).toBe(0);
      // Not yet active, yet kept through the hold (past the 2 s grace); a sweep after the hold
      // closes it and leaves nothing of it in Redis.
      expect(await listening.closeInactive(new Set(), performance.now() + 5_000)).toEqual([]);
      const afterHold = performance.now() + UPCOMING_HOLD_MS + 60_000;
      expect(await listening.closeInactive(new Set(), afterHold)).toEqual([50]);
      expect(await keysOf(50)).toEqual([]);

      // Announced with the kinds of queue its tree has: only those are opened.
      await aggregator.announceUpcoming(53, ["base", "root"]);
      await until(async () => prepared.length === 2);
      await prepared[1];
      expect(listening.openHandles()).toEqual({ blocks: [53], queues: 2, fetchers: 2 });
      expect(await listening.closeInactive(new Set(), afterHold)).toEqual([53]);

      // A prepared block's first lease is served by the fetcher opened beforehand.
      await listening.prepareBlock(51);
      const fetcher = listening.openFetcherOf(51, "base");
      expect(fetcher).toBeDefined();
      await addBlock(51);
      const { taken } = await listening.take(51, ["base"], "t-51");
      expect(taken?.job.id).toMatch(/^51-/);
      expect(listening.openFetcherOf(51, "base")).toBe(fetcher);
      await aggregator.retireBlock(51);
    } finally {
      await listening.close();
    }
    // Closed, it neither hears an announcement nor opens a block when asked.
    await aggregator.announceUpcoming(52);
    await listening.prepareBlock(52);
    expect(listening.openHandles().blocks).not.toContain(52);
  });
});
