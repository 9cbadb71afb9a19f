// Rate limits keyed on a proven identity: the address a signature recovers to, never an address
// the body merely names. Anyone can name a rival in a forged bid or login; only the rival can sign
// for it, so counting after recovery means forged requests never use up a rival's allowance.
//
// A fixed window per key in Redis, shared by every relay process. Like the per-IP limit it is best
// effort: when Redis does not answer within LIMITER_TIMEOUT_MS the request goes through uncounted.
import { DomainError } from "@prover-boost/core";
import pTimeout from "p-timeout";
import type { RelayContext } from "./context.ts";

const LIMITER_TIMEOUT_MS = 500;

// A window is a hash: its count `n` and its id `w` (Redis's time when it began), expiring with
// the window. Counts one and answers [count, ms left, window id]; the first count of a window
// starts its expiry and names it. A window that already holds ARGV[2] is answered as over the
// limit without counting: a 429 spends nothing.
const COUNT_SCRIPT = `
local held = tonumber(redis.call('HGET', KEYS[1], 'n') or '0')
if held >= tonumber(ARGV[2]) then
  local left = redis.call('PTTL', KEYS[1])
  if left > 0 then return {held + 1, left, ''} end
end
local n = redis.call('HINCRBY', KEYS[1], 'n', 1)
if n == 1 then
  local t = redis.call('TIME')
  redis.call('HSET', KEYS[1], 'w', t[1] .. '.' .. t[2])
  redis.call('PEXPIRE', KEYS[1], ARGV[1])
end
local ttl = redis.call('PTTL', KEYS[1])
if ttl < 0 then redis.call('PEXPIRE', KEYS[1], ARGV[1]); ttl = tonumber(ARGV[1]) end
return {n, ttl, redis.call('HGET', KEYS[1], 'w')}`;

// Gives one count back to the window it was counted in (ARGV[1]: its id), never to a later one:
// a count from an ended window is gone with it. A window left with none is removed.
const REFUND_SCRIPT = `
if redis.call('HGET', KEYS[1], 'w') ~= ARGV[1] then return -1 end
local n = redis.call('HINCRBY', KEYS[1], 'n', -1)
if n <= 0 then redis.call('DEL', KEYS[1]) end
return n`;

/** A counted request: `refund` gives its count back when the request is refused after all. */
export interface Counted {
  refund(): Promise<void>;
}

const uncounted: Counted = { refund: async () => {} };

/**
 * Runs `work` as one request counted for `identity` under `scope` (see countProvenIdentity); when
 * `work` throws, the count is given back, so a request refused after it was counted (a write that
 * refuses, a fault) spends nothing of the allowance. Requests in flight hold their count, so a
 * flood is still limited.
 */
export async function withProvenIdentityCount<T>(
  ctx: RelayContext,
  scope: "bids" | "signins",
  identity: string,
  limit: { max: number; windowMs: number },
  work: () => Promise<T>,
): Promise<T> {
  const counted = await countProvenIdentity(ctx, scope, identity, limit);
  try {
    return await work();
  } catch (err) {
    await counted.refund();
    throw err;
  }
}

/**
 * Counts one request for `identity` (a recovered address) under `scope`; throws 429 RATE_LIMITED
 * with Retry-After when the window already holds `max` (and then counts nothing). `max` 0 turns
 * the limit off.
 */
export async function countProvenIdentity(
  ctx: RelayContext,
  scope: "bids" | "signins",
  identity: string,
  limit: { max: number; windowMs: number },
): Promise<Counted> {
  if (limit.max === 0) return uncounted;
  const redis = ctx.fabric.redis;
  const key = `${ctx.fabric.options.prefix}:rl:${scope}:${identity.toLowerCase()}`;
  let answer: [number, number, string] | undefined;
  try {
    answer = (await pTimeout(
      redis.eval(COUNT_SCRIPT, 1, key, String(limit.windowMs), String(limit.max)),
      { milliseconds: LIMITER_TIMEOUT_MS, fallback: () => undefined },
    )) as [number, number, string] | undefined;
  } catch {
    answer = undefined;
  }
  if (!answer) return uncounted;
  const [count, ttlMs, window] = answer;
  if (count > limit.max) {
    const seconds = Math.max(1, Math.ceil(ttlMs / 1000));
    const err = new DomainError("RATE_LIMITED", `rate limit exceeded, retry in ${seconds} seconds`);
    (err as DomainError & { headers?: Record<string, string> }).headers = {
      "retry-after": String(seconds),
    };
    throw err;
  }
  return {
    // Best effort like the count: a refund Redis does not take within the timeout is dropped.
    refund: async () => {
      try {
        await pTimeout(redis.eval(REFUND_SCRIPT, 1, key, window), {
          milliseconds: LIMITER_TIMEOUT_MS,
          fallback: () => undefined,
        });
      } catch {
        // the count stays spent
      }
    },
  };
}
