import { createHash } from "node:crypto";
import { Redis, type RedisOptions } from "ioredis";

/** ioredis options from a redis:// URL, suitable for BullMQ (no per-request retry limit). */
export function redisOptions(url: string): RedisOptions {
  const u = new URL(url);
  if (u.protocol !== "redis:" && u.protocol !== "rediss:") {
    throw new Error(`REDIS_URL must be a redis:// or rediss:// URL, got ${u.protocol}`);
  }
  const db = u.pathname.length > 1 ? Number(u.pathname.slice(1)) : 0;
  return {
    host: u.hostname || "127.0.0.1",
    port: u.port ? Number(u.port) : 6379,
    db: Number.isInteger(db) ? db : 0,
    ...(u.username ? { username: decodeURIComponent(u.username) } : {}),
    ...(u.password ? { password: decodeURIComponent(u.password) } : {}),
    ...(u.protocol === "rediss:" ? { tls: {} } : {}),
    maxRetriesPerRequest: null,
  };
}

export function createRedis(url: string): Redis {
  const redis = new Redis(redisOptions(url));
  // Connection errors surface as rejected commands and ioredis reconnects by itself; without a
  // listener it would also print "Unhandled error event" for each.
  redis.on("error", () => {});
  return redis;
}

export type { Redis };

const shas = new Map<string, string>();

/**
 * Runs a Lua script by its SHA1 (EVALSHA), loading it with EVAL the first time a server has not
 * seen it: the script text crosses the wire once, not on every call. Same arguments as EVAL.
 */
export async function evalScript(
  redis: Redis,
  script: string,
  numKeys: number,
  ...args: (string | number)[]
): Promise<unknown> {
  let sha = shas.get(script);
  if (!sha) {
    sha = createHash("sha1").update(script).digest("hex");
    shas.set(script, sha);
  }
  try {
    return await redis.evalsha(sha, numKeys, ...args);
  } catch (err) {
    if (!String((err as Error).message).startsWith("NOSCRIPT")) throw err;
    return redis.eval(script, numKeys, ...args);
  }
}

/** Deletes every key under `prefix:` (tests, benchmarks and devnet teardown). */
export async function deleteKeysWithPrefix(redis: Redis, prefix: string): Promise<void> {
  let cursor = "0";
  do {
    const [next, keys] = await redis.scan(cursor, "MATCH", `${prefix}:*`, "COUNT", 1000);
    cursor = next;
    if (keys.length > 0) await redis.del(...keys);
  } while (cursor !== "0");
}
