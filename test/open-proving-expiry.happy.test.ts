// A block in open proving that nobody proves does not stay open for good: once
// OPEN_PROVING_WINDOW_MS have passed since it opened (plus the outages credited to it) it expires,
// a final stage. Its tree leaves Redis, a lease still held on it ends with no penalty, nothing is
// paid, and the market's log says so. A root the relay accepted by the window's end (in BullMQ,
// not yet in Postgres) makes the block proven and paid instead, and a result handed in while the
// block is judged is refused as a lost lease, never "accepted" and unpaid. No window ends while
// an outage is open or no relay is there, nor ever with a window of 0. (On chain its reward is
// refunded: escrow-chain.happy.)
import { RelayError } from "@prover-boost/sdk";
import { afterAll, beforeAll, expect, it } from "vitest";
import { expireOpenProving } from "../apps/aggregator/src/expire-open-proving.ts";
import { fanOutClosedBlocks } from "../apps/aggregator/src/fan-out.ts";
import { readTickView } from "../apps/aggregator/src/tick-view.ts";
import { account } from "./fixtures.ts";
import { eventually, type Stack, startStack } from "./harness.ts";
import { completeInBullmqOnly, leaseRootOf, proofOf, signIn, tryLease } from "./support/blocks.ts";
import { closeUnclaimed } from "./support/unclaimed.ts";

const WINDOW_MS = 600_000;
/**
 * How long after a window's end the test's passes come: a relay refreshes its presence every
 * LEASE_MS / 4, and one seen before the end (a refresh late on a busy machine) is not enough.
 */
const SLACK_MS = 10_000;
const op = account(0x8e);
let stack: Stack;

beforeAll(async () => {
  // The aggregator runs only when a test calls its duties, on the clock the test gives.
  stack = await startStack({
    aggregator: false,
    env: { RATE_LIMIT_PER_IP: "0", OPEN_PROVING_WINDOW_MS: String(WINDOW_MS) },
  });
  await stack.admin.deposit(op.address, 10n ** 18n);
});
afterAll(async () => {
  await stack?.close();
});

/** Block `n` in open proving (nobody bid), its tree out and seen by the relay. */
async function openProvingBlock(n: number) {
  await closeUnclaimed(stack, [n], { txCount: 2 });
  await fanOutClosedBlocks(stack.aggregator.ctx);
  await eventually(async () =>
    (await stack.relay.ctx.registry.active(Date.now())).some((b) => b.number === n),
  );
  const row = await stack.db.prisma.block.findUniqueOrThrow({ where: { number: n } });
  expect(row.stage).toBe("open_proving");
  return Number((row.stages as Record<string, number>).open_proving);
}

/** Block `n` in open proving, with one of its jobs leased to a new worker of capacity 1. */
async function leasedOpenProvingBlock(n: number, workerName: string) {
  const openedAt = await openProvingBlock(n);
  const w = await signIn(stack, op, workerName, { capacity: 1 });
  const held = await w.client.lease(10_000);
  expect(held?.blockNumber).toBe(n);
  return { openedAt, w, held: held! };
}

/** One expiry pass at `now` on the aggregator's own view of the blocks. */
async function expireAt(now: number) {
  const ctx = { ...stack.aggregator.ctx, now: () => now };
  return expireOpenProving(ctx, (await readTickView(ctx, now)).proving);
}

const stageOf = async (n: number) =>
  (await stack.db.prisma.block.findUniqueOrThrow({ where: { number: n } })).stage;

it("expires a block nobody proved once its window is over, and ends the leases on it", async () => {
  const { openedAt, w, held } = await leasedOpenProvingBlock(1, "w-held");

  // A moment before the end of its window: still open.
  expect(await expireAt(openedAt + WINDOW_MS - 1)).toBe(0);
  expect(await stageOf(1)).toBe("open_proving");

  // Judged once a relay has been seen at or after the window's end (its refreshes come every
  // LEASE_MS / 4; SLACK_MS on the clock the test gives the aggregator leaves room for late ones).
  expect(await expireAt(openedAt + WINDOW_MS + SLACK_MS)).toBe(1);
  const block = await stack.client.getBlock(1);
  expect(block.stage).toBe("expired");
  expect(block.stages.expired).toBeGreaterThanOrEqual(openedAt);
  // Its tree has left Redis: the held lease is gone (no withholding), and nothing is offered.
  const heartbeat = await w.client.heartbeat(held.id).catch((e: unknown) => e);
  expect(heartbeat).toBeInstanceOf(RelayError);
  expect((heartbeat as RelayError).code).toBe("LEASE_LOST");
  const late = await w.client.submitResult(held.id, proofOf(held)).catch((e: unknown) => e);
  expect((late as RelayError).code).toBe("LEASE_LOST");
  // Nothing of its queues or lease records is left in Redis, once the relay has closed its own
  // handles on the block (its lapse sweep, until then, writes its queues' meta and check marker
  // back, and its close removes them: block-handles).
  await eventually(async () => {
    const left = await stack.relay.ctx.fabric.redis.keys(`${stack.prefix}:*`);
    return left.filter((k) => /:b1-|:lease:1-/.test(k)).length === 0;
  });
  // (Not before: until the relay has closed its handles, its sweep can write a queue's meta back.)
  expect(await stack.aggregator.ctx.fabric.blocksInRedis()).not.toContain(1);
  // Past the held lease's whole life: nobody was charged for it, nothing was paid, and nothing
  // of the block is offered.
  await new Promise((r) => setTimeout(r, 2 * Number(stack.env.LEASE_MS)));
  expect(await tryLease(w.client, 0)).toEqual({ status: 204 });
  expect(await stack.db.prisma.penalty.count({ where: { blockNumber: 1 } })).toBe(0);
  expect(await stack.db.prisma.payout.count({ where: { blockNumber: 1 } })).toBe(0);
  // Final: a later pass changes nothing, the market's log has the stage, and the block's own
  // stream ends after it (as after `paid`).
  const stream = await fetch(`${stack.url}/v1/blocks/1/events`, {
    signal: AbortSignal.timeout(10_000),
  });
  expect(await stream.text()).toMatch(/"stage":"expired"/);
  expect(await expireAt(openedAt + 2 * WINDOW_MS)).toBe(0);
  const events = await stack.db.prisma.marketEvent.findMany({
    where: { blockNumber: 1, type: "stage" },
  });
  expect(events.map((e) => (e.data as { stage: string }).stage)).toContain("expired");
}, 60_000);

it("pays a block whose root was accepted by the window's end though not yet recorded", async () => {
  const openedAt = await openProvingBlock(2);
  const w = await signIn(stack, op, "w-root", { capacity: 1 });
  await completeInBullmqOnly(stack, await leaseRootOf(w.client, 2));
  expect(await stageOf(2)).toBe("open_proving");

  expect(await expireAt(openedAt + WINDOW_MS + 60_000)).toBe(0);
  expect(await stageOf(2)).toBe("proven");
  await stack.aggregator.aggregator.tick();
  expect(await stageOf(2)).toBe("paid");
}, 60_000);

it("ends no window while an outage is open, nor with no relay there, nor with a window of 0", async () => {
  const openedAt = await openProvingBlock(3);
  const late = openedAt + 10 * WINDOW_MS;
  await stack.db.prisma.block.update({
    where: { number: 3 },
    data: { fabricDownSince: BigInt(openedAt + 1000) },
  });
  expect(await expireAt(late)).toBe(0);
  expect(await stageOf(3)).toBe("open_proving");
  // The outage closed and credited: the window is that much longer.
  await stack.db.prisma.block.update({
    where: { number: 3 },
    data: { fabricDownSince: null, fabricDownMs: 5000n },
  });
  expect(await expireAt(openedAt + WINDOW_MS + 4999)).toBe(0);
  const config = stack.aggregator.ctx.config;
  config.openProvingWindowMs = 0;
  try {
    expect(await expireAt(late)).toBe(0);
    expect(await stageOf(3)).toBe("open_proving");
  } finally {
    config.openProvingWindowMs = WINDOW_MS;
  }
  // Every relay gone at the window's end (it left 1.5 s before the aggregator's pass, 1 s
  // before the end): nobody could have proven the block up to there, so it is not judged.
  const presence = stack.relay.ctx.broker.presence;
  await presence.stop();
  try {
    await new Promise((r) => setTimeout(r, 1500));
    expect(await expireAt(openedAt + WINDOW_MS + 5500)).toBe(0);
    expect(await stageOf(3)).toBe("open_proving");
  } finally {
    await presence.start();
  }
  // A view read before the keeper credited an outage to the block (in the same tick): the row,
  // read under its lock, decides, and the block is neither sealed nor expired.
  const at = openedAt + WINDOW_MS + 5000 + SLACK_MS;
  const judging = { ...stack.aggregator.ctx, now: () => at };
  const stale = (await readTickView(judging, at)).proving;
  await stack.db.prisma.block.update({ where: { number: 3 }, data: { fabricDownMs: 60_000n } });
  expect(await expireOpenProving(judging, stale)).toBe(0);
  expect((await stack.aggregator.ctx.fabric.sealedOf([3])).size).toBe(0);
  await stack.db.prisma.block.update({ where: { number: 3 }, data: { fabricDownMs: 5000n } });
  expect(await expireAt(at)).toBe(1);
  expect(await stageOf(3)).toBe("expired");
}, 60_000);

it("refuses, as a lost lease, a root handed in while the block is judged", async () => {
  const openedAt = await openProvingBlock(4);
  const w = await signIn(stack, op, "w-judged", { capacity: 1 });
  const root = await leaseRootOf(w.client, 4);
  // The root's result reaches the relay just after the expiry read what BullMQ completed.
  const ctx = stack.aggregator.ctx;
  const fabric = Object.create(ctx.fabric) as typeof ctx.fabric;
  let handedIn: unknown = null;
  fabric.completed = async (...args) => {
    const done = await ctx.fabric.completed(...args);
    handedIn = await w.client.submitResult(root.id, proofOf(root)).catch((e: unknown) => e);
    return done;
  };
  const now = openedAt + WINDOW_MS + SLACK_MS;
  const judging = { ...ctx, fabric, now: () => now };
  expect(await expireOpenProving(judging, (await readTickView(judging, now)).proving)).toBe(1);
  // Accepted would mean paid: the block it was for expired, so the result was refused.
  expect((handedIn as RelayError).code).toBe("LEASE_LOST");
  expect(await stageOf(4)).toBe("expired");
  const rootRow = await stack.db.prisma.proofJob.findUniqueOrThrow({ where: { id: root.id } });
  expect(rootRow.status).not.toBe("proven");
}, 60_000);

it("keeps a sealed block sealed and whole until a later pass expires it, whatever its window says", async () => {
  const { openedAt, w, held } = await leasedOpenProvingBlock(5, "w-sealed");
  const fabric = stack.aggregator.ctx.fabric;
  const before = await fabric.treeCounts(5);
  // Sealed, but what BullMQ completed cannot be read (Redis unreachable): not moved yet.
  const unreadable = Object.create(fabric) as typeof fabric;
  unreadable.completed = async () => {
    throw new Error("Connection is closed.");
  };
  const now = openedAt + WINDOW_MS + SLACK_MS;
  const cut = { ...stack.aggregator.ctx, fabric: unreadable, now: () => now };
  expect(await expireOpenProving(cut, (await readTickView(cut, now)).proving)).toBe(0);
  expect(await stageOf(5)).toBe("open_proving");
  expect([...(await fabric.sealedOf([5])).keys()]).toEqual([5]);
  // Sealed: nothing of it is leased or kept, and its tree still counts whole (the keeper does
  // not take it for lost and rebuild it).
  expect((await fabric.treeCounts(5)).jobs).toBe(before.jobs);
  const heartbeat = await w.client.heartbeat(held.id).catch((e: unknown) => e);
  expect((heartbeat as RelayError).code).toBe("LEASE_LOST");
  const other = await signIn(stack, op, "w-other", { capacity: 1 });
  expect(await tryLease(other.client, 0)).toEqual({ status: 204 });
  // An outage opened after the seal lengthens nothing: the next pass expires it.
  await stack.db.prisma.block.update({
    where: { number: 5 },
    data: { fabricDownSince: BigInt(now) },
  });
  expect(await expireAt(now + 1000)).toBe(1);
  expect(await stageOf(5)).toBe("expired");
  expect((await fabric.sealedOf([5])).size).toBe(0);
  // Final: the outage ended with it, and its view shows nothing paused.
  expect((await stack.client.getBlock(5)).deadlinePaused).toBe(false);
}, 60_000);

it("gives the place a lease on an expired block held in its worker's capacity back at once", async () => {
  const { openedAt, w } = await leasedOpenProvingBlock(6, "w-freed");
  // Another block with work in reach, its window longer (an outage credited to it): the worker
  // is full, and told so.
  await openProvingBlock(7);
  await stack.db.prisma.block.update({ where: { number: 7 }, data: { fabricDownMs: 600_000n } });
  expect(await tryLease(w.client, 0)).toEqual({ status: 409, code: "CAPACITY_EXCEEDED" });

  expect(await expireAt(openedAt + WINDOW_MS + SLACK_MS)).toBe(1);
  expect(await stageOf(6)).toBe("expired");
  expect(await stageOf(7)).toBe("open_proving");
  // The lease on block 6 ended with it, and so did its hold on the worker's one slot: the next
  // lease is block 7's at once, not once the ended lease would have run out.
  const next = await tryLease(w.client, 0);
  expect("job" in next && next.job.blockNumber).toBe(7);
}, 60_000);

/**
 * Every relay of block `n` gone (a crash loop, a bad rollout: its presence stops) until the
 * keeper has opened an outage on it and `during` has run; then back, and the block once the
 * outage is credited.
 */
async function relaysAwayFrom(n: number, during: () => Promise<void>) {
  const keeper = stack.aggregator.aggregator.keeper;
  const row = () => stack.db.prisma.block.findUniqueOrThrow({ where: { number: n } });
  const presence = stack.relay.ctx.broker.presence;
  await presence.stop();
  try {
    await eventually(async () => (await keeper.run()) && (await row()).fabricDownSince !== null);
    await during();
  } finally {
    await presence.start();
  }
  return eventually(async () => {
    await keeper.run();
    const b = await row();
    return b.fabricDownSince === null ? b : null;
  });
}

it("lengthens the window by the time no relay was there to serve the block", async () => {
  const openedAt = await openProvingBlock(8);
  // Nobody can prove the block, so the keeper opens an outage on it, as on a block its winner is
  // proving, and no window ends meanwhile.
  const credited = await relaysAwayFrom(8, async () => {
    expect(await expireAt(openedAt + 10 * WINDOW_MS)).toBe(0);
  });
  // A relay back: the outage is credited, and the window is that much longer.
  expect(Number(credited.fabricDownMs)).toBeGreaterThan(0);
  expect(credited.stage).toBe("open_proving");
}, 60_000);

it("keeps the outage open through a rebuild while no relay is there, and credits it once", async () => {
  await openProvingBlock(9);
  const keeper = stack.aggregator.aggregator.keeper;
  const goneAt = Date.now();
  const credited = await relaysAwayFrom(9, async () => {
    // Redis loses the block's tree meanwhile: the keeper rebuilds it, and credits the outage up
    // to the rebuild, but nobody can prove the block yet, so the outage stays open from there.
    await stack.aggregator.ctx.fabric.clearTree(9);
    expect(await keeper.run()).toBe(true);
    const rebuilt = await stack.db.prisma.block.findUniqueOrThrow({ where: { number: 9 } });
    expect(rebuilt.fabricJobs).not.toBeNull();
    expect(rebuilt.fabricDownSince).not.toBeNull();
    await keeper.run();
  });
  // No stretch counted twice: the credit is within the time the relay was away (and the bound
  // before its absence is seen).
  expect(Number(credited.fabricDownMs)).toBeLessThanOrEqual(Date.now() - goneAt + 1000);
  expect(credited.stage).toBe("open_proving");
}, 60_000);
