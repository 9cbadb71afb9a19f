// Subtree-affinity scheduling (SCHEDULING=affinity), on real Redis and Postgres. A worker that
// proved a child of a ready node gets that node before other equally urgent ready jobs (it holds
// the child's proof already), but never before a ready job nearer the root. A parent made ready
// by a worker's proof is held for the provers of its children for up to AFFINITY_HOLD_MS: others
// asking meanwhile are not offered it, and the hold ends with the prover's next request or when
// its time runs out (waking whoever waits). With the default scheduling the same worker gets the
// oldest ready job of the most urgent level, as before, and nothing is held.
import type { LeasedJob } from "@prover-boost/sdk";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { account } from "./fixtures.ts";
import { type Stack, startStack } from "./harness.ts";
import {
  expectedRoot,
  openBlock,
  proofOf,
  proveUntilPaid,
  type Signed,
  signIn,
} from "./support/blocks.ts";

const HOLD_MS = 400;

// One operator per block: its workers may lease only from the block it won, so the blocks the
// tests leave unfinished never hand them anything.
const opOf = (blockNumber: number) => account(0xaf00 + blockNumber);

async function stackWith(scheduling?: "affinity"): Promise<Stack> {
  return startStack({
    env: {
      LEASE_MS: "60000",
      RATE_LIMIT_PER_IP: "0",
      ...(scheduling ? { SCHEDULING: scheduling, AFFINITY_HOLD_MS: String(HOLD_MS) } : {}),
    },
  });
}

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

/**
 * An 8-tx block (block_root <- merge(1,*) <- merge(2,*) <- base(3,*)) whose bases are all held
 * by one base-only worker, so the test decides who proves which base (the holder cannot take
 * merges, so nothing is held for it).
 */
async function heldBlock(stack: Stack, blockNumber: number) {
  const op = opOf(blockNumber);
  await stack.admin.deposit(op.address, 10n ** 18n);
  const open = await openBlock(stack, blockNumber, { txCount: 8, winner: op });
  const holder = await signIn(stack, op, "holder", { jobTypes: ["base"], capacity: 8 });
  const bases = new Map<number, LeasedJob>();
  for (let i = 0; i < 8; i++) {
    const job = (await holder.client.lease(2000))!;
    bases.set(job.index, job);
  }
  expect([...bases.keys()].sort()).toEqual([0, 1, 2, 3, 4, 5, 6, 7]);
  const id = (level: number, index: number) => `${blockNumber}-${level}-${index}`;
  return {
    ...open,
    id,
    /** A worker of this block's operator. */
    worker: (name: string, opts: Parameters<typeof signIn>[3] = {}) =>
      signIn(stack, op, name, { capacity: 2, ...opts }),
    /** The holder proves base i. */
    prove: (i: number) => holder.client.submitResult(bases.get(i)!.id, proofOf(bases.get(i)!)),
    /** The holder hands base i back (it is ready again). */
    handBack: (i: number) => holder.client.failJob(bases.get(i)!.id, "handing over", true),
    /** The holder hands base i back, and `w` leases it (the only ready job). */
    handTo: async (i: number, w: Signed) => {
      await holder.client.failJob(bases.get(i)!.id, "handing over", true);
      const job = (await w.client.lease(2000))!;
      expect(job.id).toBe(id(3, i));
      return job;
    },
  };
}

const prove = (w: Signed, job: LeasedJob) => w.client.submitResult(job.id, proofOf(job));

/**
 * `w` proves bases 0 and 1 (or only base 0 with `onlyOne`; the holder proves base 1), after the
 * holder proved bases 2 and 3: merge(2,1) becomes ready first, then merge(2,0).
 */
async function twoReadyMerges(stack: Stack, blockNumber: number, onlyOne = false) {
  const block = await heldBlock(stack, blockNumber);
  const w = await block.worker("w");
  const b0 = await block.handTo(0, w);
  const b1 = onlyOne ? null : await block.handTo(1, w);
  await block.prove(2);
  await block.prove(3);
  await prove(w, b0);
  if (b1) await prove(w, b1);
  else await block.prove(1);
  return { block, w };
}

/**
 * `w` proves bases 0 and 1, which makes merge(2,0) ready, and the holder hands base 4 back, so
 * a deeper job is ready too; `other` is a second worker of the block's operator.
 */
async function mergeReadyAfterW(stack: Stack, blockNumber: number) {
  const block = await heldBlock(stack, blockNumber);
  const w = await block.worker("w");
  const other = await block.worker("other");
  const b0 = await block.handTo(0, w);
  const b1 = await block.handTo(1, w);
  await prove(w, b0);
  await prove(w, b1);
  await block.handBack(4);
  return { block, w, other };
}

describe("SCHEDULING=affinity", () => {
  let stack: Stack;
  beforeAll(async () => {
    stack = await stackWith("affinity");
  });
  afterAll(async () => stack?.close());

  it("a worker that proved both children of a node gets it before an older, equally urgent ready job", async () => {
    expect((await stack.client.info()).scheduling).toBe("affinity");
    const { block, w } = await twoReadyMerges(stack, 1);
    const parent = (await w.client.lease(2000))!;
    expect(parent.id).toBe(block.id(2, 0));
    expect(parent.children.map((c) => c.id)).toEqual([block.id(3, 0), block.id(3, 1)]);
    // Another worker gets the other ready merge.
    const other = await block.worker("other");
    const next = (await other.client.lease(2000))!;
    expect(next.id).toBe(block.id(2, 1));
    await prove(w, parent);
    await prove(other, next);
    for (const i of [4, 5, 6, 7]) await block.prove(i);
    const paid = await proveUntilPaid(stack, 1, [w.client, other.client]);
    expect(paid.rootProof).toBe(expectedRoot(1, block.txs));
  });

  it("proving either child is enough", async () => {
    const { block, w } = await twoReadyMerges(stack, 2, true);
    expect((await w.client.lease(2000))!.id).toBe(block.id(2, 0));
  });

  it("never prefers a job over a ready job nearer the root", async () => {
    const block = await heldBlock(stack, 3);
    const w = await block.worker("w");
    const merger = await block.worker("merger", { jobTypes: ["merge"] });
    const b0 = await block.handTo(0, w);
    const b1 = await block.handTo(1, w);
    // merge(1,1) becomes ready (level 1) through the holder's bases 4-7 and a merge worker...
    for (const i of [4, 5, 6, 7]) await block.prove(i);
    for (let i = 0; i < 2; i++) {
      const m = (await merger.client.lease(2000))!;
      expect(m.level).toBe(2);
      await prove(merger, m);
    }
    // ...then merge(2,0) (level 2), whose children `w` proved. Both were held (for the merge
    // worker and for `w`); once the holds lapse, the nearer-the-root job comes first.
    await prove(w, b0);
    await prove(w, b1);
    await sleep(HOLD_MS + 200);
    expect((await w.client.lease(2000))!.id).toBe(block.id(1, 1));
    expect((await w.client.lease(2000))!.id).toBe(block.id(2, 0));
  });

  it("holds a parent for the worker whose proof made it ready: others get other work first", async () => {
    const { block, w, other } = await mergeReadyAfterW(stack, 4);
    // merge(2,0) (level 2) would come before base(3,4), but it waits for `w`.
    expect((await other.client.lease(2000))!.id).toBe(block.id(3, 4));
    expect((await w.client.lease(2000))!.id).toBe(block.id(2, 0));
  });

  it("a lapsed hold gives the parent its place back", async () => {
    const { block, other } = await mergeReadyAfterW(stack, 5);
    await sleep(HOLD_MS + 200);
    expect((await other.client.lease(2000))!.id).toBe(block.id(2, 0));
    expect((await other.client.lease(2000))!.id).toBe(block.id(3, 4));
  });

  it("others waiting are not offered a held parent; when its hold runs out they get it at once", async () => {
    const block = await heldBlock(stack, 6);
    const w = await block.worker("w");
    const other = await block.worker("other");
    const b0 = await block.handTo(0, w);
    const b1 = await block.handTo(1, w);
    const poll = other.client.lease(5000);
    await sleep(200); // the poll is waiting when the parent becomes ready
    await prove(w, b0);
    const t0 = Date.now();
    await prove(w, b1); // `w` does not ask again
    // The proof's completion woke everyone (a held parent is announced to its children's
    // provers): the poll looked, was not offered the held parent, and waits again, for at most a
    // second before it looks by itself.
    const timeouts = stack.relay.ctx.wakeups.timeouts;
    expect((await poll)!.id).toBe(block.id(2, 0));
    expect(Date.now() - t0).toBeGreaterThanOrEqual(HOLD_MS - 50);
    // Woken when the hold ended, not by its wait running out.
    expect(stack.relay.ctx.wakeups.timeouts).toBe(timeouts);
  });
});

describe("default scheduling (priority)", () => {
  let stack: Stack;
  beforeAll(async () => {
    stack = await stackWith();
  });
  afterAll(async () => stack?.close());

  it("the same worker gets the oldest ready job of the most urgent level", async () => {
    expect((await stack.client.info()).scheduling).toBe("priority");
    const { block, w } = await twoReadyMerges(stack, 1);
    expect((await w.client.lease(2000))!.id).toBe(block.id(2, 1));
    expect((await w.client.lease(2000))!.id).toBe(block.id(2, 0));
  });

  it("a parent made ready by a worker's proof is not held: anyone asking gets it first", async () => {
    const { block, other } = await mergeReadyAfterW(stack, 4);
    expect((await other.client.lease(2000))!.id).toBe(block.id(2, 0));
  });
});
