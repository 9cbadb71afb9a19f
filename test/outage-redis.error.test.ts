// A relay whose link to Redis stalls (the server accepts but never answers: a hung server or a
// partition) or is cut (connections reset and refused: a dead or restarting server). Nothing may
// hang: /livez stays 200 without touching Redis, /readyz answers 503 naming redis, a request
// that needs only Postgres is served (the rate limiter lets it through uncounted), a lease
// answers 503 UNAVAILABLE with Retry-After (not a hang, not 500), and once the link is back the
// relay serves again by itself, readiness announcements included.
import { Redis } from "ioredis";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { account } from "./fixtures.ts";
import { eventually, TEST_REDIS_URL } from "./harness.ts";
import { signIn } from "./support/blocks.ts";
import { ask, type ProxiedRelay, startProxiedRelay } from "./support/proxied-relay.ts";

const errorCode = (body: unknown) => (body as { error?: { code?: string } }).error?.code;
const errorMessage = (body: unknown) => (body as { error?: { message?: string } }).error?.message;

describe.each(["stall", "cut"] as const)("Redis link %s", { timeout: 240_000 }, (fault) => {
  let r: ProxiedRelay;
  let token: string;

  beforeAll(async () => {
    r = await startProxiedRelay({ REDIS_COMMAND_TIMEOUT_MS: "1000" });
    // Capacity 2: a lease slot reserved by a command the stall held back lands when the link is
    // restored and is held until its placeholder expires; recovery is checked on the other slot.
    token = (await signIn(r, account(0x71), "w-outage", { capacity: 2 })).token;
  });
  afterAll(async () => {
    await r?.close();
  });

  it("keeps /livez up, reports redis in /readyz, answers 503 to a lease, then recovers", async () => {
    expect((await ask(`${r.url}/readyz`)).status).toBe(200);
    r.redisLink[fault]();

    const live = await ask(`${r.url}/livez`);
    expect(live.status).toBe(200);

    const ready = await ask(`${r.url}/readyz`);
    expect(ready.status).toBe(503);
    expect(errorCode(ready.body)).toBe("UNAVAILABLE");
    expect(errorMessage(ready.body)).toMatch(/redis down/);
    expect(errorMessage(ready.body)).toMatch(/database up/);

    // The rate limiter counts in Redis; without it the request is let through, not held.
    const read = await ask(`${r.url}/v1/auctions/9`);
    expect(read.status).toBe(404);
    expect(errorCode(read.body)).toBe("AUCTION_NOT_FOUND");

    const lease = await ask(`${r.url}/v1/jobs/lease`, {
      method: "POST",
      json: { waitMs: 0 },
      token,
    });
    expect(lease.status).toBe(503);
    expect(errorCode(lease.body)).toBe("UNAVAILABLE");
    expect(Number(lease.headers.get("retry-after"))).toBeGreaterThan(0);

    r.redisLink.restore();
    await eventually(async () => (await ask(`${r.url}/readyz`)).status === 200, 30_000, 200);
    const again = await eventually(
      async () => {
        const a = await ask(`${r.url}/v1/jobs/lease`, {
          method: "POST",
          json: { waitMs: 0 },
          token,
        });
        return a.status === 204 ? a : null;
      },
      30_000,
      200,
    );
    expect(again.status).toBe(204);

    // The relay hears other processes' announcements again (its subscriber resubscribed).
    const heard = new Promise<void>((resolve) => r.relay.ctx.fabric.events.once("blocks", resolve));
    const other = new Redis(TEST_REDIS_URL);
    try {
      let done = false;
      void heard.then(() => {
        done = true;
      });
      await eventually(
        async () => {
          await other.publish(
            r.relay.ctx.fabric.channel,
            JSON.stringify({ from: "another", blocks: true }),
          );
          return done;
        },
        30_000,
        200,
      );
    } finally {
      other.disconnect();
    }
  });
});
