// What a stack costs Redis, read from the server itself: connected clients, keys under the
// stack's prefix, and commands per second while nothing is happening. A service that leaks
// per-block handles shows up as all three growing block after block (each BullMQ queue and
// fetcher is a connection, and a fetcher's stalled check runs on a timer and re-creates keys of
// queues already removed). The figures are server-wide, so the server must serve only the stack
// being measured: give it a private redis-server (apps/devnet/src/redis-server.ts).
//
// Shared by the resource test and the fault suite's soak. No timing assertions: `settle` polls
// until the readings stop changing (services close a finished block's handles a few seconds
// after its last use), and the idle rate is a count over a window, with this probe's own
// commands taken out.
import { Redis } from "ioredis";

export interface RedisUsage {
  /** Connected clients, not counting this probe. */
  clients: number;
  /** Keys under `<prefix>:`. */
  keys: number;
  /** Commands per second the server processed over a quiet window, not counting this probe's. */
  idleCommandsPerSec: number;
}

function infoField(info: string, field: string): number {
  const m = new RegExp(`^${field}:(\\d+)`, "m").exec(info);
  if (!m) throw new Error(`INFO has no ${field}`);
  return Number(m[1]);
}

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

export class RedisUsageProbe {
  private readonly redis: Redis;

  constructor(
    url: string,
    private readonly prefix: string,
  ) {
    this.redis = new Redis(url, { maxRetriesPerRequest: 1 });
    this.redis.on("error", () => {});
  }

  async clients(): Promise<number> {
    return infoField(await this.redis.info("clients"), "connected_clients") - 1;
  }

  async keyNames(): Promise<string[]> {
    const out: string[] = [];
    let cursor = "0";
    do {
      const [next, keys] = await this.redis.scan(
        cursor,
        "MATCH",
        `${this.prefix}:*`,
        "COUNT",
        1000,
      );
      cursor = next;
      out.push(...keys);
    } while (cursor !== "0");
    return out.sort();
  }

  async keys(): Promise<number> {
    return (await this.keyNames()).length;
  }

  /**
   * Commands per second over `windowMs` with nothing sent by this probe in between. INFO counts
   * a command once it has run, so the second reading includes the first INFO: one is taken off.
   */
  async idleCommandsPerSec(windowMs = 2000): Promise<number> {
    const before = infoField(await this.redis.info("stats"), "total_commands_processed");
    const started = performance.now();
    await sleep(windowMs);
    const after = infoField(await this.redis.info("stats"), "total_commands_processed");
    const elapsed = performance.now() - started;
    return ((after - before - 1) * 1000) / elapsed;
  }

  /**
   * Clients and keys once they stop changing, then the idle rate over `windowMs`. First polls
   * `ready` (when given: e.g. "every service let go of its finished blocks") until it holds, then
   * reads every `stepMs` until `stableReadings` readings in a row agree. Gives up after
   * `timeoutMs` and returns the last reading (which the caller's assertion then shows).
   */
  async settle(
    opts: {
      ready?: () => boolean | Promise<boolean>;
      stepMs?: number;
      stableReadings?: number;
      timeoutMs?: number;
      windowMs?: number;
    } = {},
  ): Promise<RedisUsage> {
    const { ready, stepMs = 250, stableReadings = 3, timeoutMs = 30_000, windowMs = 2000 } = opts;
    const until = Date.now() + timeoutMs;
    while (ready && !(await ready()) && Date.now() < until) await sleep(stepMs);
    let last = { clients: await this.clients(), keys: await this.keys() };
    for (let same = 1; same < stableReadings && Date.now() < until; ) {
      await sleep(stepMs);
      const now = { clients: await this.clients(), keys: await this.keys() };
      same = now.clients === last.clients && now.keys === last.keys ? same + 1 : 1;
      last = now;
    }
    return { ...last, idleCommandsPerSec: await this.idleCommandsPerSec(windowMs) };
  }

  close(): void {
    this.redis.disconnect();
  }
}

/**
 * Readings that drifted from the first by more than `fraction` of it (or by more than
 * `floor`, for figures near zero, where a tenth of the value is less than one unit): empty when
 * usage stayed flat. `meanOf` smooths a noisy figure: each reading of it is the mean of that many
 * consecutive samples (a leak that grows with every block still shows, as a growing mean).
 */
export function driftFromFirst(
  samples: readonly RedisUsage[],
  fraction = 0.1,
  floor: Partial<Record<keyof RedisUsage, number>> = {},
  meanOf: Partial<Record<keyof RedisUsage, number>> = {},
): string[] {
  const out: string[] = [];
  for (const field of ["clients", "keys", "idleCommandsPerSec"] as const) {
    const k = Math.max(1, Math.min(meanOf[field] ?? 1, samples.length));
    const readings: number[] = [];
    for (let i = 0; i + k <= samples.length; i++) {
      readings.push(samples.slice(i, i + k).reduce((sum, s) => sum + s[field], 0) / k);
    }
    const first = readings[0];
    if (first === undefined) continue;
    const allowed = Math.max(first * fraction, floor[field] ?? 0);
    for (const [i, r] of readings.entries()) {
      if (Math.abs(r - first) > allowed) {
        const which = k === 1 ? `sample ${i + 1}` : `samples ${i + 1}-${i + k}`;
        out.push(`${which}: ${field} ${r.toFixed(1)} vs ${first.toFixed(1)}`);
      }
    }
  }
  return out;
}
