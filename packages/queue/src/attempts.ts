// How often each worker has given up on each job, so a worker that keeps failing one job cannot
// loop on it forever. One Redis hash per block (under the fabric's prefix, so every relay process
// sees the same counts and they outlive a relay restart; deleted when the block is retired):
//   "n <jobId> <worker>" -> retryable fails of that job by that worker
//   "x <worker>"         -> the jobs of this block that worker is no longer offered
// The second field makes the lease path's question ("what may this worker not have?") one HGET.
import type { Redis } from "ioredis";
import { evalScript } from "./redis.ts";
import { luaAddWord, luaRemoveWord, words } from "./word-lists.ts";

/**
 * Where a lessee's bars are kept: a hash field holding a word list of job ids, and the block's
 * cool-down set ("<worker> <jobId>" scored by its end), as of `nowMs`.
 */
export interface BarsAt {
  key: string;
  field: string;
  coolKey: string;
  worker: string;
  nowMs: number;
}

/** Who a worker is across sessions and relays: its operator and the worker id it signs in with. */
export const lesseeKey = (operator: string, workerName: string): string =>
  `${operator.toLowerCase()}/${workerName}`;

export interface FailRecord {
  /** Retryable fails of the job by this worker so far (0 for a give-up). */
  fails: number;
  /** Whether the worker is now barred from the job. */
  barred: boolean;
  /** What this call changed, so a rejected request can be undone. */
  counted: boolean;
  newlyBarred: boolean;
}

// KEYS[1] the block's hash; ARGV: job id, worker, bound (0: bar at once without counting).
const recordScript = `${luaAddWord}
local n = 0
if ARGV[3] ~= '0' then n = redis.call('HINCRBY', KEYS[1], 'n ' .. ARGV[1] .. ' ' .. ARGV[2], 1) end
local xField = 'x ' .. ARGV[2]
local newly = 0
if ARGV[3] == '0' or n >= tonumber(ARGV[3]) then newly = addWord(KEYS[1], xField, ARGV[1]) end
local list = ' ' .. (redis.call('HGET', KEYS[1], xField) or '') .. ' '
local barred = 0
if string.find(list, ' ' .. ARGV[1] .. ' ', 1, true) then barred = 1 end
return {n, newly, barred}`;

// KEYS[1] the block's hash; ARGV: job id, worker, counted (1/0), newly barred (1/0).
const undoScript = `${luaRemoveWord}
if ARGV[3] == '1' then redis.call('HINCRBY', KEYS[1], 'n ' .. ARGV[1] .. ' ' .. ARGV[2], -1) end
if ARGV[4] == '1' then removeWord(KEYS[1], 'x ' .. ARGV[2], ARGV[1]) end
return 1`;

export class AttemptBook {
  constructor(
    private readonly redis: Redis,
    private readonly prefix: string,
  ) {}

  /** The block's hash; ProofFabric.retireBlock deletes it with the block's queues. */
  key(blockNumber: number): string {
    return `${this.prefix}:attempts:${blockNumber}`;
  }

  /** A retryable fail: counted; at `max` fails the worker is barred from the job. */
  recordRetryable(blockNumber: number, jobId: string, worker: string, max: number) {
    return this.record(blockNumber, jobId, worker, Math.max(1, Math.floor(max)));
  }

  /** A non-retryable fail: the worker said it cannot prove this job, so it is barred at once. */
  recordGiveUp(blockNumber: number, jobId: string, worker: string) {
    return this.record(blockNumber, jobId, worker, 0);
  }

  private async record(
    blockNumber: number,
    jobId: string,
    worker: string,
    bound: number,
  ): Promise<FailRecord> {
    const [fails, newly, barred] = (await evalScript(
      this.redis,
      recordScript,
      1,
      this.key(blockNumber),
      jobId,
      worker,
      String(bound),
    )) as [number, number, number];
    return { fails, barred: barred === 1, counted: bound !== 0, newlyBarred: newly === 1 };
  }

  /** Takes back what `record` did (the fail it belonged to was refused). */
  async undo(blockNumber: number, jobId: string, worker: string, record: FailRecord) {
    await evalScript(
      this.redis,
      undoScript,
      1,
      this.key(blockNumber),
      jobId,
      worker,
      record.counted ? "1" : "0",
      record.newlyBarred ? "1" : "0",
    );
  }

  /**
   * The block's cool-downs: "<worker> <jobId>" scored by when the cool-down ends. A worker whose
   * lease on a job lapsed is not offered that job until then; others are.
   */
  coolKey(blockNumber: number): string {
    return `${this.prefix}:cooldown:${blockNumber}`;
  }

  /** Both of the block's keys; ProofFabric.retireBlock deletes them with the block's queues. */
  keys(blockNumber: number): string[] {
    return [this.key(blockNumber), this.coolKey(blockNumber)];
  }

  /** After a lapse: `worker` is not offered `jobId` until `untilMs` (ended ones are pruned). */
  async coolDown(
    blockNumber: number,
    jobId: string,
    worker: string,
    nowMs: number,
    untilMs: number,
  ) {
    const key = this.coolKey(blockNumber);
    await this.redis
      .multi()
      .zremrangebyscore(key, "-inf", nowMs)
      .zadd(key, untilMs, `${worker} ${jobId}`)
      .exec();
  }

  /** Where the jobs of a block this worker is not offered (now) are kept. */
  barsAt(blockNumber: number, worker: string, nowMs: number): BarsAt {
    return {
      key: this.key(blockNumber),
      field: `x ${worker}`,
      coolKey: this.coolKey(blockNumber),
      worker,
      nowMs,
    };
  }

  /** Jobs of a block this worker is not offered at `nowMs`: barred, or cooling down. */
  async barred(blockNumber: number, worker: string, nowMs: number): Promise<Set<string>> {
    const at = this.barsAt(blockNumber, worker, nowMs);
    const [bars, cooling] = await Promise.all([
      this.redis.hget(at.key, at.field),
      this.redis.zrangebyscore(at.coolKey, `(${nowMs}`, "+inf"),
    ]);
    const mine = `${worker} `;
    return new Set([
      ...words(bars),
      ...cooling.filter((m) => m.startsWith(mine)).map((m) => m.slice(mine.length)),
    ]);
  }

  /** Retryable fails of one job by one worker. */
  async fails(blockNumber: number, jobId: string, worker: string): Promise<number> {
    return Number((await this.redis.hget(this.key(blockNumber), `n ${jobId} ${worker}`)) ?? 0);
  }
}
