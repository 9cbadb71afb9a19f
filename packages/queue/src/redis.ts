// Redis clients for the fabric, BullMQ and the rate limiter. Every command has a deadline
// (commandTimeout): while Redis is down or stalled, ioredis would otherwise keep a command in its
// offline queue and wait for its reply forever, and the request or shutdown waiting on it would
// hang too. With the deadline the command fails, the relay answers 503 and the caller retries;
// ioredis reconnects by itself and later commands go through.
//
// A command that timed out may still run later: ioredis sends its offline queue on reconnect and
// resends commands that were unanswered when a connection dropped. For the fabric's own clients
// (createRedis) neither happens once they have connected: while disconnected a command fails at
// once, and nothing is replayed, so no stale write (a lease, a slot) lands after the caller was
// told it failed; a command in flight when its connection drops fails at the drop (REPLY_LOST).
// BullMQ's connections keep ioredis's defaults, as BullMQ expects.
//
// BullMQ requires maxRetriesPerRequest: null (a blocking read must survive a reconnect). A
// commandTimeout is safe with it here: the fabric never blocks (jobs are fetched with
// getNextJob({ block: false }) and nothing runs a BullMQ worker loop or QueueEvents), so no
// command legitimately waits longer than a short script takes.
import { createHash } from "node:crypto";
import type { Socket } from "node:net";
import { Redis, type RedisOptions } from "ioredis";

/** The default deadline for one Redis reply (REDIS_COMMAND_TIMEOUT_MS). */
export const DEFAULT_REDIS_COMMAND_TIMEOUT_MS = 5000;

export interface RedisClientOptions {
  /** Deadline for one reply, ms (default DEFAULT_REDIS_COMMAND_TIMEOUT_MS). */
  commandTimeoutMs?: number | undefined;
}

/**
 * The error of a fabric command whose connection dropped before its reply arrived: it may have
 * run. Starts like ioredis's own "Connection is closed." so that it reads as Redis being
 * unavailable wherever errors are classified.
 */
export const REPLY_LOST =
  "Connection is closed before the reply arrived (the command may have run)";

/** Options of createRedis beyond the deadline. */
export interface FabricRedisOptions extends RedisClientOptions {
  /**
   * Commands issued in one turn of the event loop go out in one write (ioredis's
   * auto-pipelining), while the previous such batch waits for its replies: under load a relay
   * sends its many small commands in a few socket writes rather than one write each, which was
   * a large share of its CPU per job. Order on the connection is kept. Default: on.
   */
  autoPipelining?: boolean;
}

/**
 * Longest wait between two attempts to reconnect to Redis. BullMQ's own default for its
 * connections grows to 20 s (its attempts after a drop come about 1, 2, …, 7, 10, 18 and 38 s
 * in), so a relay whose Redis was away for 20 s went on failing its workers' results for another
 * 18 s after Redis was back, while their lapses were swept, and leases held through the outage
 * were lost. Every connection here, BullMQ's and the fabric's, tries again within a second.
 */
export const RECONNECT_MAX_DELAY_MS = 1000;

/** The wait before reconnection attempt `times` (1, 2, …): 100 ms more each time, up to the cap. */
export const reconnectDelayMs = (times: number): number =>
  Math.min(100 * Math.max(times, 1), RECONNECT_MAX_DELAY_MS);

/** ioredis options from a redis:// URL, suitable for BullMQ (no per-request retry limit). */
export function redisOptions(url: string, options: RedisClientOptions = {}): RedisOptions {
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
    commandTimeout: options.commandTimeoutMs ?? DEFAULT_REDIS_COMMAND_TIMEOUT_MS,
    retryStrategy: reconnectDelayMs,
  };
}

/**
 * A client for the fabric's own commands (not BullMQ's): commands wait for the first connection,
 * and after that fail at once while disconnected and are never replayed (see above).
 */
export function createRedis(url: string, options: FabricRedisOptions = {}): Redis {
  const redis = new Redis({
    ...redisOptions(url, options),
    autoResendUnfulfilledCommands: false,
    enableAutoPipelining: options.autoPipelining ?? true,
  });
  let live = false;
  redis.on("ready", () => {
    redis.options.enableOfflineQueue = false;
    live = true;
  });
  // A connection that drops takes with it the replies of the commands still in flight, which may
  // or may not have run. ioredis, not resending them, would leave them to their deadline; they
  // fail at the drop instead, so that a caller facing an unknown outcome (a lease attempt that
  // may have written its record) can set it right as soon as Redis is back, not seconds later.
  // (Only after "ready": a drop during the handshake is ioredis's own to recover from.)
  redis.on("close", () => {
    if (!live) return;
    live = false;
    for (let item = redis.commandQueue.shift(); item; item = redis.commandQueue.shift()) {
      // ioredis's own commands (a resubscribe after a reconnect) have nobody waiting on them:
      // their failure is not an unhandled one (the fabric subscribes again itself, fabric.ts).
      (item.command as { promise?: Promise<unknown> }).promise?.catch(() => {});
      item.command.reject(new Error(REPLY_LOST));
    }
  });
  // Connection errors surface as rejected commands and ioredis reconnects by itself; without a
  // listener it would also print "Unhandled error event" for each.
  redis.on("error", () => {});
  coalesceWrites(redis);
  return redis;
}

export type { Redis };

/** Every script declared with luaScript, by its text, and its SHA1. */
const shas = new Map<string, string>();

const sha1 = (script: string) => createHash("sha1").update(script).digest("hex");

/**
 * Declares a Lua script the fabric runs (evalScript): the fabric's connection loads every declared
 * script as it comes up, first or after a drop (loadScripts). Redis keeps no script across a restart, and a
 * script's first call afterwards would cost a NOSCRIPT answer and a second round trip; where
 * that call was a lease's drop, the look for the agent's next job sent behind it found the agent
 * still full. Returns the text.
 */
export function luaScript(script: string): string {
  if (!shas.has(script)) shas.set(script, sha1(script));
  return script;
}

/** Loads every declared script (a failure is harmless: evalScript falls back to EVAL). */
export function loadScripts(redis: Redis): void {
  for (const script of shas.keys()) redis.script("LOAD", script).catch(() => {});
}

/**
 * Runs a Lua script by its SHA1 (EVALSHA), loading it with EVAL when the server has not seen it
 * (it was flushed, or the script was not declared): the script text crosses the wire once, not
 * on every call. Same arguments as EVAL.
 */
export async function evalScript(
  redis: Redis,
  script: string,
  numKeys: number,
  ...args: (string | number)[]
): Promise<unknown> {
  const sha = shas.get(luaScript(script))!;
  try {
    return await redis.evalsha(sha, numKeys, ...args);
  } catch (err) {
    if (!String((err as Error).message).startsWith("NOSCRIPT")) throw err;
    return redis.eval(script, numKeys, ...args);
  }
}

/** Every key matching `pattern`, found with SCAN (sweeps; not for a hot path). */
export async function scanKeys(redis: Redis, pattern: string): Promise<string[]> {
  const out: string[] = [];
  let cursor = "0";
  do {
    const [next, keys] = await redis.scan(cursor, "MATCH", pattern, "COUNT", 1000);
    cursor = next;
    out.push(...keys);
  } while (cursor !== "0");
  return out;
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

const coalescing = new WeakSet<object>();

/**
 * Holds a client's socket writes until the event loop's check phase (setImmediate), so that every
 * command it sends while the loop is running one batch of I/O callbacks leaves in one write
 * system call. Under load a relay handles dozens of requests in one pass, each sending a script
 * or two, and BullMQ's connections (not auto-pipelined) otherwise write each one separately: on
 * a virtualised host each write costs tens of microseconds of kernel time and wakes Redis again.
 * Order on the connection is kept (a corked socket only buffers) and the delay is at most the
 * rest of that pass: when the loop is idle a write leaves at once after the callback that made
 * it. Each new socket of a reconnecting client is held the same way.
 */
export function coalesceWrites(client: Redis): void {
  const hold = () => {
    const socket = client.stream as Socket | undefined;
    if (!socket || coalescing.has(socket)) return;
    coalescing.add(socket);
    const write = socket.write;
    let held = false;
    const release = () => {
      held = false;
      socket.uncork();
    };
    socket.write = function (this: Socket, ...args: unknown[]): boolean {
      if (!held) {
        held = true;
        socket.cork();
        setImmediate(release);
      }
      return (write as (...a: unknown[]) => boolean).apply(this, args);
    } as Socket["write"];
  };
  hold();
  client.on("connect", hold);
}
