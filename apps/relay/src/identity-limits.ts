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

// INCR, and start the window's expiry on the first count; answers [count, ms left].
const COUNT_SCRIPT = `
local n = redis.call('INCR', KEYS[1])
if n == 1 then redis.call('PEXPIRE', KEYS[1], ARGV[1]) end
local ttl = redis.call('PTTL', KEYS[1])
if ttl < 0 then redis.call('PEXPIRE', KEYS[1], ARGV[1]); ttl = tonumber(ARGV[1]) end
return {n, ttl}`;

/**
 * Counts one request for `identity` (a recovered address) under `scope`; throws 429 RATE_LIMITED
 * with Retry-After when the window already holds `max`. `max` 0 turns the limit off.
 */
export async function countProvenIdentity(
  ctx: RelayContext,
  scope: "bids" | "signins",
  identity: string,
  limit: { max: number; windowMs: number },
): Promise<void> {
  if (limit.max === 0) return;
  const key = `${ctx.fabric.options.prefix}:rl:${scope}:${identity.toLowerCase()}`;
  let answer: [number, number] | undefined;
  try {
    answer = (await pTimeout(ctx.fabric.redis.eval(COUNT_SCRIPT, 1, key, String(limit.windowMs)), {
      milliseconds: LIMITER_TIMEOUT_MS,
      fallback: () => undefined,
    })) as [number, number] | undefined;
  } catch {
    answer = undefined;
  }
  if (!answer) return;
  const [count, ttlMs] = answer;
  if (count > limit.max) {
    const seconds = Math.max(1, Math.ceil(ttlMs / 1000));
    const err = new DomainError("RATE_LIMITED", `rate limit exceeded, retry in ${seconds} seconds`);
    (err as DomainError & { headers?: Record<string, string> }).headers = {
      "retry-after": String(seconds),
    };
    throw err;
  }
}
