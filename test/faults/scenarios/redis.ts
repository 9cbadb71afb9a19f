// Redis faults mid-tree, on the private redis-server: restarted with its data (clean shutdown,
// append-only file), restarted empty (killed, data directory wiped: the proof fabric is gone and
// must be rebuilt from Postgres), down for 20 s (longer than two leases) and for 7 s (shorter than
// one) then back with its data, stopped for 10 s with its connections open, and every connection to it
// reset again and again while Redis itself stays up. Where Redis keeps its data, no honest worker loses a lease.
import type { Columns } from "../lib/measure.ts";
import type { Scenario } from "../lib/scenario.ts";
import { sleep } from "../lib/util.ts";
import { World } from "../lib/world.ts";
import { inWorld, provingBlock, settle, treePlan, WINNER } from "./common.ts";

/**
 * Fails the scenario when a worker was told that a lease it held was lost. Nobody withheld or
 * crashed here, and Redis kept its data: every lease that ran out while no relay could hear its
 * worker is taken back by the worker's next heartbeat or result, so the proofs done for it count.
 * The message tells a lapse judged a withholding (a relay seen present through its window) from
 * one swept before its worker came back, and what the workers said of each job.
 */
function noLeaseLost(world: World, columns: Columns): void {
  if (world.lostJobs.length > 0) {
    const jobs = [...new Set(world.lostJobs.map((l) => l.split(" ")[1]!.replace(/:$/, "")))];
    throw new Error(
      `honest workers lost ${world.lostJobs.length} leases (honest operators penalized: ${columns.honestPenalized}): ${world.lostJobs.join("; ")}; ${jobs.map((j) => world.jobStory(j)).join("; ")}`,
    );
  }
}

async function midTree(world: World, n: number, deadlineMs?: number): Promise<void> {
  await world.startWorkers(WINNER, { prefix: "w" });
  await provingBlock(world, n, treePlan(deadlineMs));
  await world.waitProven(n, 6);
}

/**
 * A fault mid-tree after which Redis is back with its data: the block must be paid with every
 * column at zero, and no worker told that a lease it held was lost.
 */
function dataKept(name: string, injected: string, fault: (world: World) => Promise<void>) {
  return {
    name,
    injected,
    timeoutMs: 600_000,
    run: () =>
      inWorld(World.start, async (world) => {
        await midTree(world, 1);
        world.faultStarted();
        await fault(world);
        world.faultEnded();
        const columns = await settle(world, 1);
        noLeaseLost(world, columns);
        return columns;
      }),
  } satisfies Scenario;
}

/** Redis shut down (its append-only file flushed), kept down `ms`, and started again. */
const downFor = (ms: number) => async (world: World) => {
  await world.redis.shutdown();
  if (ms > 0) await sleep(ms);
  await world.redis.start();
};

export const redisRestartWithData = dataKept(
  "Redis restart with data",
  "redis-server shut down and started again (AOF kept) mid-tree",
  downFor(0),
);

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

/**
 * Longer than two leases (the services' LEASE_MS is 8 s), and long enough that a connection
 * backing off by BullMQ's default would still be away well after Redis is back: every
 * connection must return within a second of Redis, or workers' results keep failing while
 * their lapses are swept.
 */
export const redisDown20s = dataKept(
  "Redis down 20 s",
  "redis-server down 20 s mid-tree, back with its data",
  downFor(20_000),
);

/**
 * Shorter than a lease (the services' LEASE_MS is 8 s) yet longer than a lease less a heartbeat
 * period: a lease renewed just before Redis went runs out while it is down, though no relay
 * could take its worker's heartbeats.
 */
export const redisDownWithinLease = dataKept(
  "Redis down 7 s",
  "redis-server down 7 s mid-tree (less than a lease), back with its data",
  downFor(7_000),
);

export const redisPaused10s = dataKept(
  "Redis paused 10 s",
  "redis-server stopped (SIGSTOP) 10 s mid-tree, connections kept open, then resumed",
  (world) => world.redis.pause(10_000),
);

/** Connection resets in a row, and the pause between them. */
const RESETS = 25;
const RESET_EVERY_MS = 200;

export const redisConnectionsReset: Scenario = {
  name: "Redis connections reset",
  injected: `every connection to redis-server closed ${RESETS} times, ${RESET_EVERY_MS} ms apart, mid-tree`,
  timeoutMs: 600_000,
  run: () =>
    inWorld(World.start, async (world) => {
      await midTree(world, 1);
      world.faultStarted();
      // Each reset takes the replies of whatever the services had in flight: a lease's record,
      // a pop, a heartbeat, a completion. Redis keeps everything, and the relay looks present
      // throughout (its connections are back within moments), so a record left of a lease whose
      // worker was told the attempt failed would be counted as that worker's withholding.
      let closed = 0;
      for (let i = 0; i < RESETS; i++) {
        closed += await world.redis.killClients();
        await sleep(RESET_EVERY_MS);
      }
      world.faultEnded();
      const columns = await settle(world, 1);
      columns.notes.push(`${closed} connections closed`);
      for (const r of world.relays) {
        if (r.child.exited()) columns.notes.push(`a relay exited: ${r.child.stderr()}`);
      }
      // A lease lost here (a proof the relay completed and then refused, uncredited) would be a
      // worker paying for the relay's lost replies.
      noLeaseLost(world, columns);
      return columns;
    }),
};

export const redisScenarios = [
  redisRestartWithData,
  redisRestartEmpty,
  redisDown20s,
  redisDownWithinLease,
  redisPaused10s,
  redisConnectionsReset,
];
