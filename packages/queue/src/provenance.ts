// Who proved the children of each node, for subtree-affinity scheduling: a worker that proved a
// child already holds that child's proof, so handing it the parent saves moving one proof. Per
// block, under the fabric's prefix (shared by relay processes, deleted when the block is retired):
//   provers hash: parent job id -> the workers (lesseeKey) that proved one of its children
//   holds zset:   parent job id, scored by the time until which it waits for those workers
// A hold exists because the worker whose proof makes a parent ready has to come back with a new
// lease request, and by then some other idle worker would usually have taken the parent; while
// held, the parent is also demoted in its queue (see affinity.ts).
import type { Redis } from "ioredis";
import { evalScript, luaScript } from "./redis.ts";
import { luaAddWord, words } from "./word-lists.ts";

const recordScript = luaScript(`${luaAddWord}
return addWord(KEYS[1], ARGV[1], ARGV[2])`);

// KEYS[1] the block's holds; ARGV[1] now. Ends lapsed holds; returns { live, lapsed }. Being
// one script, each lapsed hold is returned to exactly one caller (which restores its parent).
const holdsScript = luaScript(`
local lapsed = redis.call('ZRANGEBYSCORE', KEYS[1], '-inf', ARGV[1])
if #lapsed > 0 then redis.call('ZREMRANGEBYSCORE', KEYS[1], '-inf', ARGV[1]) end
return {redis.call('ZRANGE', KEYS[1], 0, -1), lapsed}`);

export class ProvenanceBook {
  constructor(
    private readonly redis: Redis,
    private readonly prefix: string,
  ) {}

  /** The block's provers hash; ProofFabric.retireBlock deletes it with the block's queues. */
  key(blockNumber: number): string {
    return `${this.prefix}:provers:${blockNumber}`;
  }

  holdsKey(blockNumber: number): string {
    return `${this.prefix}:holds:${blockNumber}`;
  }

  /** Both of the block's keys. */
  keys(blockNumber: number): string[] {
    return [this.key(blockNumber), this.holdsKey(blockNumber)];
  }

  /** `worker` proved a child of `parentId`. */
  async record(blockNumber: number, parentId: string, worker: string): Promise<void> {
    await evalScript(this.redis, recordScript, 1, this.key(blockNumber), parentId, worker);
  }

  /** The workers that proved a child of each given node (absent: none recorded). */
  async proversOf(blockNumber: number, parentIds: readonly string[]) {
    const out = new Map<string, string[]>();
    if (parentIds.length === 0) return out;
    const lists = await this.redis.hmget(this.key(blockNumber), ...parentIds);
    parentIds.forEach((id, i) => {
      const provers = words(lists[i]);
      if (provers.length > 0) out.set(id, provers);
    });
    return out;
  }

  /** A ready parent waits for the workers that proved its children until `untilMs`. */
  async hold(blockNumber: number, parentId: string, untilMs: number): Promise<void> {
    await this.redis.zadd(this.holdsKey(blockNumber), untilMs, parentId);
  }

  /**
   * Parents still held at `nowMs`, each with the workers it waits for, and the parents whose
   * hold lapsed just now (ended by this call: the caller restores them).
   */
  async holds(blockNumber: number, nowMs: number) {
    const [live, lapsed] = (await evalScript(
      this.redis,
      holdsScript,
      1,
      this.holdsKey(blockNumber),
      String(nowMs),
    )) as [string[], string[]];
    return { live: await this.proversOf(blockNumber, live), lapsed };
  }

  /** Ends holds early (a worker they waited for asked for work; or the parent was taken). */
  async release(blockNumber: number, parentIds: readonly string[]): Promise<void> {
    if (parentIds.length > 0) await this.redis.zrem(this.holdsKey(blockNumber), ...parentIds);
  }
}
