// Redis faults mid-tree, on the private redis-server: restarted with its data (clean shutdown,
// append-only file), restarted empty (killed, data directory wiped: the proof fabric is gone and
// must be rebuilt from Postgres), and down for 10 s then back with its data.
import type { Scenario } from "../lib/scenario.ts";
import { sleep } from "../lib/util.ts";
import { World } from "../lib/world.ts";
import { inWorld, provingBlock, settle, treePlan, WINNER } from "./common.ts";

async function midTree(world: World, n: number, deadlineMs?: number): Promise<void> {
  await world.startWorkers(WINNER, { prefix: "w" });
  await provingBlock(world, n, treePlan(deadlineMs));
  await world.waitProven(n, 6);
}

export const redisRestartWithData: Scenario = {
  name: "Redis restart with data",
  injected: "redis-server shut down and started again (AOF kept) mid-tree",
  timeoutMs: 600_000,
  run: () =>
    inWorld(World.start, async (world) => {
      await midTree(world, 1);
      await world.redis.shutdown();
      await world.redis.start();
      world.faultEnded();
      return settle(world, 1);
    }),
};

/**
 * The winner's deadline: short enough that a block the fabric lost reaches it within the
 * scenario, long enough that a busy machine proves the tree well before it when nothing is lost.
 */
const EMPTY_DEADLINE_MS = 60_000;

export const redisRestartEmpty: Scenario = {
  name: "Redis restart empty",
  injected: "redis-server killed, data wiped, started empty mid-tree",
  timeoutMs: 600_000,
  run: () =>
    inWorld(World.start, async (world) => {
      await midTree(world, 1, EMPTY_DEADLINE_MS);
      await world.redis.killAndWipe();
      await world.redis.start();
      world.faultEnded();
      // Past the proof deadline and the open-proving that follows it: a lost tree shows here.
      return settle(world, 1, EMPTY_DEADLINE_MS + 30_000);
    }),
};

export const redisDown10s: Scenario = {
  name: "Redis down 10 s",
  injected: "redis-server down 10 s mid-tree, back with its data",
  timeoutMs: 600_000,
  run: () =>
    inWorld(World.start, async (world) => {
      await midTree(world, 1);
      await world.redis.shutdown();
      await sleep(10_000);
      await world.redis.start();
      world.faultEnded();
      return settle(world, 1);
    }),
};

export const redisScenarios = [redisRestartWithData, redisRestartEmpty, redisDown10s];
