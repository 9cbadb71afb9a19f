// Rate limits, counted in Redis so every relay process shares them: a global limit per client IP
// (here), and limits per proven identity, counted after signature recovery (identity-limits.ts:
// bids per prover, sign-ins per operator). Over a limit: 429 RATE_LIMITED with Retry-After
// (seconds).
//
// Counting is best effort: when Redis is down or slow the limiter lets the request through
// (skipOnError) rather than failing or holding every request. It has its own connection, which
// fails at once while disconnected and waits at most LIMITER_TIMEOUT_MS for a reply, so an outage
// costs a request no more than that before the route itself answers (or fails with 503).
// Health probes (/livez, /readyz) are not counted at all (config.rateLimit: false).
import rateLimit from "@fastify/rate-limit";
import { DomainError } from "@prover-boost/core";
import { createRedis } from "@prover-boost/queue";
import type { FastifyInstance } from "fastify";
import type { RelaySettings } from "./settings.ts";

/** The limiter's own Redis connection. */
export interface LimiterRedis {
  url: string;
  prefix: string;
  commandTimeoutMs: number;
}

const limited = (after: string) =>
  new DomainError("RATE_LIMITED", `rate limit exceeded, retry in ${after}`);

/** Longest a request waits for its count before it is let through uncounted. */
const LIMITER_TIMEOUT_MS = 500;

export async function registerRateLimits(
  app: FastifyInstance,
  limits: RelaySettings["rateLimits"],
  store: LimiterRedis,
) {
  if (limits.perIp === 0) return;
  const redis = createRedis(store.url, {
    commandTimeoutMs: Math.min(LIMITER_TIMEOUT_MS, store.commandTimeoutMs),
    autoPipelining: false,
  });
  app.addHook("onClose", async () => {
    redis.disconnect();
  });
  await app.register(rateLimit, {
    global: true,
    max: limits.perIp,
    timeWindow: limits.windowMs,
    redis,
    skipOnError: true,
    nameSpace: `${store.prefix}:rl:ip:`,
    errorResponseBuilder: (_req, c) => limited(c.after),
  });
}
