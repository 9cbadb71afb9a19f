// The 30-block soak: thirty small blocks one after another on one relay, with no fault injected,
// to see what a week in production would accumulate. After each block is paid and the queues of
// every block are retired it samples the private Redis: connected clients and keys; before the
// second block and after the last it measures idle Redis commands per second. Each must stay within 10 % of its figure
// after the first block (the first block creates what every later one reuses).
import { openBlock } from "../lib/market.ts";
import { measure } from "../lib/measure.ts";
import type { Scenario } from "../lib/scenario.ts";
import { pollUntil, sleep } from "../lib/util.ts";
import { World } from "../lib/world.ts";
import { inWorld, WINNER, winner } from "./common.ts";

export const SOAK_BLOCKS = 30;
/**
 * How long after a block is paid the sample waits at most for every block queue's keys to be gone
 * and the services to be back to their own connections: the block is retired (its queues
 * removed) at payout, and each process closes its handles on it within a few seconds (their
 * stalled checks re-create a queue's `meta` and `stalled-check` keys until then, and closing
 * sweeps those). The sample then counts what the blocks left behind, not what the last ones have
 * not cleared yet; keys and connections that outlast this are counted as they stand.
 */
const RETIRE_MS = 10_000;
/** Within this after a block is paid, every process has closed its handles on it (1 s sweeps, 2 s grace). */
const HANDLES_CLOSED_MS = 5000;
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
      // The services' connections at rest once the first block's handles are closed (a service
      // opens some for good on first use, such as the aggregator's flow producer).
      let baseline = Number.POSITIVE_INFINITY;
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
        const blockKeys = `${world.prefix}:b[0-9]*`;
        await pollUntil(
          async () =>
            (await world.redis.countKeys(blockKeys)) === 0 && (await clients(world)) <= baseline,
          RETIRE_MS,
          50,
          "every block's queues retired and their handles closed",
        ).catch(() => {});
        if (n === 1) {
          await sleep(HANDLES_CLOSED_MS);
          baseline = await clients(world);
        }
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
