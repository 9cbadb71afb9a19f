// The per-identity limit on a real Redis: a request refused after it was counted gives its count
// back to the window it was counted in, and never to a later one (else a request counted at the
// end of one window and refused in the next would make room for one more there).
import { randomBytes } from "node:crypto";
import { Redis } from "ioredis";
import { afterAll, describe, expect, it } from "vitest";
import type { RelayContext } from "./context.ts";
import { countProvenIdentity } from "./identity-limits.ts";

const redis = new Redis(process.env.TEST_REDIS_URL ?? "redis://127.0.0.1:6379");
const prefix = `pbtest-${randomBytes(5).toString("hex")}`;
const ctx = { fabric: { redis, options: { prefix } } } as unknown as RelayContext;

afterAll(async () => {
  const keys = await redis.keys(`${prefix}:*`);
  if (keys.length > 0) await redis.del(...keys);
  redis.disconnect();
});

const limited = (err: unknown) => (err as { code?: string }).code === "RATE_LIMITED";

describe("a count given back", () => {
  it("frees room in its own window", async () => {
    const limit = { max: 2, windowMs: 60_000 };
    const who = "0xaa";
    await countProvenIdentity(ctx, "bids", who, limit);
    const second = await countProvenIdentity(ctx, "bids", who, limit);
    await expect(countProvenIdentity(ctx, "bids", who, limit)).rejects.toSatisfy(limited);
    await second.refund();
    await countProvenIdentity(ctx, "bids", who, limit);
    await expect(countProvenIdentity(ctx, "bids", who, limit)).rejects.toSatisfy(limited);
  });

  it("never frees room in a later window", async () => {
    const limit = { max: 2, windowMs: 300 };
    const who = "0xbb";
    const early = [
      await countProvenIdentity(ctx, "bids", who, limit),
      await countProvenIdentity(ctx, "bids", who, limit),
    ];
    // The window ends with both requests still in flight; a new one fills up.
    await new Promise((r) => setTimeout(r, 400));
    await countProvenIdentity(ctx, "bids", who, { ...limit, windowMs: 60_000 });
    await countProvenIdentity(ctx, "bids", who, { ...limit, windowMs: 60_000 });
    for (const c of early) await c.refund();
    await expect(
      countProvenIdentity(ctx, "bids", who, { ...limit, windowMs: 60_000 }),
    ).rejects.toSatisfy(limited);
  });
});
