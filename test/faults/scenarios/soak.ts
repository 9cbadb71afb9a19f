// The 30-block soak: thirty small blocks one after another on one relay, with no fault injected,
// to see what a week in production would accumulate. After each block is paid (and retired) it
// samples the private Redis: connected clients and keys; before the second block and after the
// last it measures idle Redis commands per second. Each must stay within 10 % of its figure
// after the first block (the first block creates what every later one reuses).
import { openBlock } from "../lib/market.ts";
import { measure } from "../lib/measure.ts";
import type { Scenario } from "../lib/scenario.ts";
import { sleep } from "../lib/util.ts";
import { World } from "../lib/world.ts";
import { inWorld, WINNER, winner } from "./common.ts";

export const SOAK_BLOCKS = 30;
/** How long after a block is paid the sample is taken: retiring it is the aggregator's next tick. */
const SETTLE_MS = 500;
// Long enough that the workers' long polls (every 2 s) and the aggregator's ticks average out.
const IDLE_WINDOW_MS = 5000;

/** Commands Redis processed per second over an idle window (the sampling's own two excluded). */
async function idleCommandsPerSecond(world: World): Promise<number> {
  const total = async () => Number((await world.redis.info("stats")).total_commands_processed);
  const a = await total();
  await sleep(IDLE_WINDOW_MS);
  const b = await total();
  return Math.round(((b - a - 1) * 1000) / IDLE_WINDOW_MS);
}

/** The harness's own connection is not the services'. */
const clients = async (world: World) =>
  Number((await world.redis.info("clients")).connected_clients) - 1;

const within10 = (first: number, last: number) => last <= Math.ceil(first * 1.1);

export const soak: Scenario = {
  name: "30-block soak",
  injected: `${SOAK_BLOCKS} consecutive blocks, no fault`,
  timeoutMs: 900_000,
  run: () =>
    inWorld(World.start, async (world) => {
      await world.fund([winner]);
      await world.startWorkers(WINNER, { prefix: "w", simMs: 20 });
      const connections: number[] = [];
      const keys: number[] = [];
      let idleFirst = 0;
      const blocks: number[] = [];
      let refused = 0;
      for (let n = 1; n <= SOAK_BLOCKS; n++) {
        const tally = await openBlock(world, n, {
          txCount: 2,
          biddingMs: 1500,
          deadlineMs: 120_000,
          bidders: [{ account: winner, fee: 500 }],
        });
        refused += tally.refused;
        await world.waitStage(n, ["paid"], 120_000);
        blocks.push(n);
        await sleep(SETTLE_MS);
        connections.push(await clients(world));
        keys.push(await world.redis.dbsize());
        if (n === 1) idleFirst = await idleCommandsPerSecond(world);
      }
      const idleLast = await idleCommandsPerSecond(world);
      const columns = await measure(world, blocks, 0);
      columns.recoveredLabel = `${blocks.length}/${SOAK_BLOCKS} paid`;
      const first = (xs: number[]) => xs[0]!;
      const last = (xs: number[]) => xs[xs.length - 1]!;
      columns.resources = [
        {
          metric: "Redis connections",
          first: first(connections),
          last: last(connections),
          flat: within10(first(connections), last(connections)),
        },
        {
          metric: "Redis keys",
          first: first(keys),
          last: last(keys),
          flat: within10(first(keys), last(keys)),
        },
        {
          metric: "idle Redis commands/s",
          first: idleFirst,
          last: idleLast,
          flat: within10(idleFirst, idleLast),
        },
      ];
      // A bid that arrives after the close is refused (the block is then proven in open proving).
      if (refused > 0) columns.notes.push(`${refused} bids refused (late)`);
      columns.notes.push(`connections per block: ${connections.join(" ")}`);
      return columns;
    }),
};

export const soakScenarios = [soak];
