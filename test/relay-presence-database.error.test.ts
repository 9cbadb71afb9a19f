// A relay whose link to Postgres is cut or stalls, with Redis fine: it is not ready (/readyz
// answers 503) and cannot serve the winner's workers, so for proof deadlines it is not present
// (deadlines.ts): what the aggregator reads of its presence stops at its last good answer from
// Postgres, while its stretch for the lapse rule, which needs Redis alone, is still refreshed.
// Once the link is back it is present again.
import { presenceTimingsOf, sightBrokers } from "@prover-boost/queue";
import { Redis } from "ioredis";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { eventually, TEST_REDIS_URL } from "./harness.ts";
import { ask, type ProxiedRelay, startProxiedRelay } from "./support/proxied-relay.ts";

/** startProxiedRelay's LEASE_MS: a presence refresh every 500 ms, present for 1000 ms after. */
const { intervalMs, freshMs } = presenceTimingsOf(2000);

describe.each(["cut", "stall"] as const)("Postgres link %s", { timeout: 120_000 }, (fault) => {
  let r: ProxiedRelay;
  let redis: Redis;

  beforeAll(async () => {
    r = await startProxiedRelay({
      DATABASE_CONNECT_TIMEOUT_MS: "1000",
      DATABASE_QUERY_TIMEOUT_MS: "1500",
    });
    redis = new Redis(TEST_REDIS_URL);
  });
  afterAll(async () => {
    redis?.disconnect();
    await r?.close();
  });

  const sight = () => sightBrokers(redis, r.prefix);
  const present = async () => {
    const s = await sight();
    return s.servingAt !== null && s.now - s.servingAt <= freshMs;
  };

  it("is absent for deadlines from its last good answer until the link is back", async () => {
    await eventually(present);
    r.databaseLink[fault]();
    const brokeAt = (await sight()).now;
    expect((await ask(`${r.url}/readyz`)).status).toBe(503);
    await eventually(async () => !(await present()), 20_000);
    const down = await sight();
    // Seen serving no later than its last check before the fault (one refresh period).
    expect(down.servingAt!).toBeLessThanOrEqual(brokeAt + intervalMs);
    // Its stretch is still refreshed: Redis is fine, and heartbeats need nothing else.
    const broker = r.relay.ctx.broker.presence;
    const seen = Number(await redis.zscore(broker.seenKey, broker.id));
    expect(down.now - seen).toBeLessThanOrEqual(freshMs);
    // It stays absent while the link is down.
    await new Promise((resolve) => setTimeout(resolve, 2 * freshMs));
    expect(await present()).toBe(false);

    r.databaseLink.restore();
    await eventually(present, 30_000);
    expect((await ask(`${r.url}/readyz`)).status).toBe(200);
  });
});
