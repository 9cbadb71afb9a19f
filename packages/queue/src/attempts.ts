// How often each job has failed, and by whom, so nobody can loop on a job forever: not one worker,
// not one operator through many worker ids (worker ids are free), not everyone together. One
// Redis hash per block (under the fabric's prefix, so every relay process sees the same counts
// and they outlive a relay restart; deleted when the block is retired):
//   "n <jobId> <worker>"   -> retryable fails (lapses, bad proofs) of that job by that worker
//   "o <jobId> <operator>" -> the same, by every worker of that operator together
//   "t <jobId>"            -> the same, by everyone: the job's failed attempts (its cap)
//   "r <jobId>"            -> how often the job was re-issued in open proving, and when last
//   "x <worker>"           -> the jobs of this block that worker is no longer offered
//   "x op:<operator>"      -> the jobs of this block no worker of that operator is offered
//   "u <token>"            -> a fail recorded and not undone (undo takes it away once, so an
//                             undo sent again, its reply lost, takes nothing back twice)
// The "x" fields make the lease path's question ("what may this worker not have?") two HGETs.
import { randomUUID } from "node:crypto";
import type { Redis } from "ioredis";
import { evalScript, luaScript } from "./redis.ts";
import { luaAddWord, luaRemoveWord, words } from "./word-lists.ts";

/**
 * Where a lessee's bars are kept: a hash field holding a word list of job ids, and the block's
 * cool-down set ("<worker> <jobId>" scored by its end), as of `nowMs`.
 */
export interface BarsAt {
  key: string;
  field: string;
  /** The operator's bars (every worker id of it). */
  operatorField: string;
  coolKey: string;
  worker: string;
  nowMs: number;
}

/** Who a worker is across sessions and relays: its operator and the worker id it signs in with. */
export const lesseeKey = (operator: string, workerName: string): string =>
  `${operator.toLowerCase()}/${workerName}`;

/** The bars' field of an operator (all its worker ids). */
export const operatorBarsField = (operator: string): string => `x op:${operator.toLowerCase()}`;

export interface FailRecord {
  /** Retryable fails of the job by this worker so far (0 for a give-up). */
  fails: number;
  /** Retryable fails of the job by every worker of this operator so far. */
  operatorFails: number;
  /** Failed attempts of the job by everyone so far (its cap's count). */
  jobFails: number;
  /** Whether the worker is now barred from the job (itself or through its operator). */
  barred: boolean;
  /** What this call changed, so a rejected request can be undone. */
  counted: boolean;
  newlyBarred: boolean;
  newlyBarredOperator: boolean;
  operator: string;
  /** Names this record for its undo (taken back once only). */
  token: string;
}

/** The operator-wide bound, when a fail should count toward it. */
export interface OperatorBound {
  operator: string;
  maxOperator: number;
}

// KEYS[1] the block's hash; ARGV: job id, worker, bound (0: bar at once without counting),
// operator ('' for none), operator bound, the record's token.
const recordScript = luaScript(`${luaAddWord}
redis.call('HSET', KEYS[1], 'u ' .. ARGV[6], 1)
local n, o, t = 0, 0, 0
local newlyOp = 0
if ARGV[3] ~= '0' then
  n = redis.call('HINCRBY', KEYS[1], 'n ' .. ARGV[1] .. ' ' .. ARGV[2], 1)
  t = redis.call('HINCRBY', KEYS[1], 't ' .. ARGV[1], 1)
  if ARGV[4] ~= '' then
    o = redis.call('HINCRBY', KEYS[1], 'o ' .. ARGV[1] .. ' ' .. ARGV[4], 1)
    if o >= tonumber(ARGV[5]) then newlyOp = addWord(KEYS[1], 'x op:' .. ARGV[4], ARGV[1]) end
  end
end
local xField = 'x ' .. ARGV[2]
local newly = 0
if ARGV[3] == '0' or n >= tonumber(ARGV[3]) then newly = addWord(KEYS[1], xField, ARGV[1]) end
local list = ' ' .. (redis.call('HGET', KEYS[1], xField) or '') .. ' '
if ARGV[4] ~= '' then list = list .. (redis.call('HGET', KEYS[1], 'x op:' .. ARGV[4]) or '') .. ' ' end
local barred = 0
if string.find(list, ' ' .. ARGV[1] .. ' ', 1, true) then barred = 1 end
return {n, newly, barred, o, t, newlyOp}`);

// KEYS[1] the block's hash; ARGV: job id, worker, counted (1/0), newly barred (1/0), operator,
// operator newly barred (1/0), the record's token. Once per record: 0 when already undone.
const undoScript = luaScript(`${luaRemoveWord}
if redis.call('HDEL', KEYS[1], 'u ' .. ARGV[7]) == 0 then return 0 end
if ARGV[3] == '1' then
  redis.call('HINCRBY', KEYS[1], 'n ' .. ARGV[1] .. ' ' .. ARGV[2], -1)
  redis.call('HINCRBY', KEYS[1], 't ' .. ARGV[1], -1)
  if ARGV[5] ~= '' then redis.call('HINCRBY', KEYS[1], 'o ' .. ARGV[1] .. ' ' .. ARGV[5], -1) end
end
if ARGV[4] == '1' then removeWord(KEYS[1], 'x ' .. ARGV[2], ARGV[1]) end
if ARGV[6] == '1' then removeWord(KEYS[1], 'x op:' .. ARGV[5], ARGV[1]) end
return 1`);

/** A job's field of failed attempts (by everyone) in its block's hash. */
const jobFailsField = (jobId: string) => `t ${jobId}`;

export class AttemptBook {
  constructor(
    private readonly redis: Redis,
    private readonly prefix: string,
  ) {}

  /** The block's hash; ProofFabric.retireBlock deletes it with the block's queues. */
  key(blockNumber: number): string {
    return `${this.prefix}:attempts:${blockNumber}`;
  }

  /**
   * A retryable fail (a hand-back, a penalized lapse, a bad proof): counted for the worker, its
   * operator (when given) and the job; at `max` fails the worker is barred from the job, at
   * `maxOperator` every worker of the operator is.
   */
  recordRetryable(
    blockNumber: number,
    jobId: string,
    worker: string,
    max: number,
    operator?: OperatorBound,
  ) {
    return this.record(blockNumber, jobId, worker, Math.max(1, Math.floor(max)), operator);
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
    op?: OperatorBound,
  ): Promise<FailRecord> {
    const operator = op?.operator.toLowerCase() ?? "";
    const token = randomUUID();
    const [fails, newly, barred, operatorFails, jobFails, newlyOp] = (await evalScript(
      this.redis,
      recordScript,
      1,
      this.key(blockNumber),
      jobId,
      worker,
      String(bound),
      operator,
      String(Math.max(1, Math.floor(op?.maxOperator ?? 1))),
      token,
    )) as number[];
    return {
      fails: fails!,
      operatorFails: operatorFails!,
      jobFails: jobFails!,
      barred: barred === 1,
      counted: bound !== 0,
      newlyBarred: newly === 1,
      newlyBarredOperator: newlyOp === 1,
      operator,
      token,
    };
  }

  /**
   * Where a job's failed attempts are counted: the block's hash and the job's field. The lease
   * record's script reads it there, so a job at its cap is failed rather than leased.
   */
  capField(blockNumber: number, jobId: string): { key: string; field: string } {
    return { key: this.key(blockNumber), field: jobFailsField(jobId) };
  }

  /** Failed attempts of a job by everyone since it was last (re-)issued. */
  async jobFails(blockNumber: number, jobId: string): Promise<number> {
    return Number((await this.redis.hget(this.key(blockNumber), jobFailsField(jobId))) ?? 0);
  }

  /**
   * A failed job is re-issued (open proving): its attempt count starts again (bars stay), and
   * the re-issue is counted. Returns how often it was re-issued before and when last (0, 0 if
   * never), as of before this call.
   */
  async reissued(
    blockNumber: number,
    jobId: string,
    nowMs: number,
  ): Promise<{ count: number; lastMs: number }> {
    const key = this.key(blockNumber);
    const [count, lastMs] = ((await this.redis.hget(key, `r ${jobId}`)) ?? "0 0")
      .split(" ")
      .map(Number);
    await this.redis
      .multi()
      .hdel(key, jobFailsField(jobId))
      .hset(key, `r ${jobId}`, `${(count ?? 0) + 1} ${nowMs}`)
      .exec();
    return { count: count ?? 0, lastMs: lastMs ?? 0 };
  }

  /** How often a job was re-issued and when last, without counting. */
  async reissues(blockNumber: number, jobId: string): Promise<{ count: number; lastMs: number }> {
    const [count, lastMs] = ((await this.redis.hget(this.key(blockNumber), `r ${jobId}`)) ?? "0 0")
      .split(" ")
      .map(Number);
    return { count: count ?? 0, lastMs: lastMs ?? 0 };
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
      record.operator,
      record.newlyBarredOperator ? "1" : "0",
      record.token,
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
  barsAt(blockNumber: number, worker: string, nowMs: number, operator?: string): BarsAt {
    return {
      key: this.key(blockNumber),
      field: `x ${worker}`,
      operatorField: operator ? operatorBarsField(operator) : `x ${worker}`,
      coolKey: this.coolKey(blockNumber),
      worker,
      nowMs,
    };
  }

  /** Jobs of a block this worker is not offered at `nowMs`: barred, or cooling down. */
  async barred(
    blockNumber: number,
    worker: string,
    nowMs: number,
    operator?: string,
  ): Promise<Set<string>> {
    const at = this.barsAt(blockNumber, worker, nowMs, operator);
    const [bars, operatorBars, cooling] = await Promise.all([
      this.redis.hget(at.key, at.field),
      this.redis.hget(at.key, at.operatorField),
      this.redis.zrangebyscore(at.coolKey, `(${nowMs}`, "+inf"),
    ]);
    const mine = `${worker} `;
    return new Set([
      ...words(bars),
      ...words(operatorBars),
      ...cooling.filter((m) => m.startsWith(mine)).map((m) => m.slice(mine.length)),
    ]);
  }

  /** Retryable fails of one job by one worker. */
  async fails(blockNumber: number, jobId: string, worker: string): Promise<number> {
    return Number((await this.redis.hget(this.key(blockNumber), `n ${jobId} ${worker}`)) ?? 0);
  }
}
