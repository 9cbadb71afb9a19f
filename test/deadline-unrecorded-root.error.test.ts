// A root proof the relay accepted (BullMQ completed it, the lease check) before the proof
// deadline, but whose Postgres record is not there when the deadline is judged: the relay died
// between the two steps, its group-committed marks trail, or Postgres was briefly down. The
// winner proved in time; the aggregator records such proofs before it slashes anyone, so the
// block is proven and paid, never deadline_missed. If BullMQ cannot be read at that moment (Redis
// unreachable), the block is not judged until it can be.
import { afterAll, beforeAll, expect, it } from "vitest";
import { BlockRetries } from "../apps/aggregator/src/block-retries.ts";
import { enforceDeadlines, JUDGE_READ_GIVE_UP_MS } from "../apps/aggregator/src/deadlines.ts";
import { account, openAuction, signedBid } from "./fixtures.ts";
import { type Stack, startStack } from "./harness.ts";
import { completeInBullmqOnly, leaseRootOf, openBlock, proofOf, signIn } from "./support/blocks.ts";

const op = account(0x7f);
let stack: Stack;

beforeAll(async () => {
  stack = await startStack({ env: { RATE_LIMIT_PER_IP: "0" } });
  await stack.admin.deposit(op.address, 10n ** 18n);
});
afterAll(async () => {
  await stack?.close();
});

it("does not slash a winner whose root proof the relay accepted before the deadline", async () => {
  const DEADLINE_IN = 600_000;
  const t0 = Date.now();
  await openBlock(stack, 1, { txCount: 2, winner: op, proofDeadlineInMs: DEADLINE_IN });
  // From here the aggregator runs only when the test ticks it, on a clock the test sets.
  await stack.aggregator.aggregator.stop();
  const w = await signIn(stack, op, "w1", { capacity: 1 });
  const root = await leaseRootOf(w.client, 1);
  // The relay's first step only, well before the deadline: BullMQ completes the root job, and
  // the relay dies before recording it in Postgres.
  await completeInBullmqOnly(stack, root);
  expect(Date.now()).toBeLessThan(t0 + DEADLINE_IN);
  const before = await stack.db.prisma.block.findUniqueOrThrow({ where: { number: 1 } });
  expect(before.stage).toBe("proving");

  // The aggregator's next tick comes after the deadline (it was slow, or stopped meanwhile).
  stack.aggregator.ctx.now = () => Date.now() + DEADLINE_IN + 60_000;
  await stack.aggregator.aggregator.tick();
  await stack.aggregator.aggregator.tick();

  const block = await stack.client.getBlock(1);
  const penalties = await stack.db.prisma.penalty.findMany({ where: { blockNumber: 1 } });
  expect(penalties.filter((p) => p.kind === "slash")).toEqual([]);
  expect(Object.keys(block.stages)).not.toContain("deadline_missed");
  expect(block.stage).toBe("paid");
  const rootRow = await stack.db.prisma.proofJob.findUniqueOrThrow({ where: { id: root.id } });
  expect(rootRow).toMatchObject({ status: "proven", proof: proofOf(root), workerId: "w1" });
}, 60_000);

/**
 * Block `n` won by `op` and fanned out on the aggregator's clock (then left to the test), its
 * BullMQ reads failing with `message`: the deadline, the context and that unreadable fabric.
 */
async function provingBlock(n: number, message: string) {
  const bid = await signedBid(op, n);
  const now = Date.now();
  const closesAt = now + 60_000;
  const deadline = now + 120_000;
  const open = await openAuction(n, {
    txCount: 2,
    biddingClosesAt: closesAt,
    proofDeadline: deadline,
  });
  await stack.client.openAuction(open.auction, open.txs, open.signature);
  await stack.client.submitBid(bid.quote, bid.signature);
  const ctx = stack.aggregator.ctx;
  ctx.now = () => closesAt + 1000;
  await stack.aggregator.aggregator.tick();
  expect((await stack.client.getBlock(n)).stage).toBe("proving");
  const unreadable = Object.create(ctx.fabric) as typeof ctx.fabric;
  unreadable.completed = async () => {
    throw new Error(message);
  };
  return { deadline, ctx, unreadable };
}

it("does not judge a block whose completed proofs cannot be read (Redis unreachable)", async () => {
  const { deadline, ctx, unreadable } = await provingBlock(2, "Connection is closed.");
  // Past its deadline, and BullMQ does not answer.
  ctx.now = () => deadline + 600_000;
  expect(await enforceDeadlines({ ...ctx, fabric: unreadable })).toBe(0);
  const block = await stack.db.prisma.block.findUniqueOrThrow({ where: { number: 2 } });
  expect(block.stage).toBe("proving");
  expect(await stack.db.prisma.penalty.count({ where: { blockNumber: 2 } })).toBe(0);
  // Once it can be read (nothing was completed), the missed deadline is judged.
  expect(await enforceDeadlines(ctx)).toBe(1);
  expect(await stack.db.prisma.penalty.count({ where: { blockNumber: 2, kind: "slash" } })).toBe(1);
}, 60_000);

it("judges a block whose completed proofs still cannot be read long after its deadline", async () => {
  // Redis answers, but this block's completed proofs never can be read: it is not held forever.
  const { deadline, ctx, unreadable } = await provingBlock(
    3,
    "WRONGTYPE Operation against a key holding the wrong kind of value",
  );
  ctx.now = () => deadline + 60_000;
  expect(await enforceDeadlines({ ...ctx, fabric: unreadable })).toBe(0);
  ctx.now = () => deadline + 1000 + JUDGE_READ_GIVE_UP_MS + 60_000;
  expect(await enforceDeadlines({ ...ctx, fabric: unreadable })).toBe(1);
  expect(await stack.db.prisma.penalty.count({ where: { blockNumber: 3, kind: "slash" } })).toBe(1);
}, 60_000);

it("goes on to the next late block while one whose proofs cannot be read waits", async () => {
  const first = await provingBlock(4, "WRONGTYPE Operation against a key holding the wrong kind");
  const second = await provingBlock(5, "unused");
  const { ctx } = second;
  // Block 4's reads keep failing (Redis answers, but not for it); block 5's are fine.
  const fabric = Object.create(ctx.fabric) as typeof ctx.fabric;
  fabric.completed = (n, ids) =>
    n === 4 ? first.unreadable.completed(n, ids) : ctx.fabric.completed(n, ids);
  const retries = new BlockRetries();
  let now = Math.max(first.deadline, second.deadline) + 60_000;
  const judge = () => enforceDeadlines({ ...ctx, fabric, now: () => now }, () => true, retries, 1);
  // One late block a pass: block 4 is held, and the next pass judges block 5 meanwhile.
  expect(await judge()).toBe(0);
  expect(await judge()).toBe(1);
  expect(await stack.db.prisma.penalty.count({ where: { blockNumber: 5, kind: "slash" } })).toBe(1);
  expect((await stack.client.getBlock(4)).stage).toBe("proving");
  // Its wait over, block 4 is read again (and still held).
  now += 1000;
  expect(await judge()).toBe(0);
  expect(await stack.db.prisma.penalty.count({ where: { blockNumber: 4 } })).toBe(0);
}, 60_000);
