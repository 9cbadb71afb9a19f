// What the tree scenarios share: one winning operator (index WINNER) whose simulated workers run
// in their own process, one losing bidder, and a block whose tree is long enough to be hit
// mid-way (16 transactions, 31 jobs, 150 ms a proof on 4 lease slots).
import type { LocalAccount } from "viem";
import { account } from "../../fixtures.ts";
import { type BlockPlan, openBlock } from "../lib/market.ts";
import { type Columns, measure, recoveredAfter } from "../lib/measure.ts";
import { trace } from "../lib/util.ts";
import type { World } from "../lib/world.ts";

export const WINNER = 0xfa01;
export const LOSER = 0xfa02;
export const winner: LocalAccount = account(WINNER);
export const loser: LocalAccount = account(LOSER);

export const treePlan = (deadlineMs = 120_000): BlockPlan => ({
  txCount: 16,
  biddingMs: 2500,
  deadlineMs,
  bidders: [
    { account: winner, fee: 500 },
    { account: loser, fee: 1500 },
  ],
});

/** Funds both bidders, opens block `n` and waits until its tree is out (stage proving). */
export async function provingBlock(world: World, n: number, plan = treePlan()): Promise<void> {
  await world.fund([winner, loser]);
  await openBlock(world, n, plan);
  await world.waitStage(n, ["proving"], 120_000);
}

/** Waits (up to `timeoutMs`) for block `n` to be paid and measures the columns. */
export async function settle(world: World, n: number, timeoutMs = 120_000): Promise<Columns> {
  trace(`fault over; waiting for block ${n} to be paid`);
  const recovered = await recoveredAfter(world, n, timeoutMs);
  const columns = await measure(world, [n], recovered);
  const block = await world.block(n);
  if (recovered === null) columns.notes.push(`block ${n} left in ${block?.stage}`);
  return columns;
}

/** Runs `body` in a fresh world and always closes it. */
export async function inWorld<T>(
  start: () => Promise<World>,
  body: (world: World) => Promise<T>,
): Promise<T> {
  trace("starting the world");
  const world = await start();
  trace("world started");
  try {
    return await body(world);
  } finally {
    trace("closing the world");
    await world.close();
    trace("world closed");
  }
}
