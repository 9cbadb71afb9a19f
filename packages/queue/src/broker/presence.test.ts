// What the aggregator reads of the brokers' presence for proof deadlines (sightBrokers), on a
// real Redis: a broker refreshing is seen serving; one whose readiness check fails or goes
// unanswered is seen serving only up to its last good answer, while its stretch (the lapse
// rule's record) keeps being refreshed; a clean close leaves when it was last seen; and the
// timings and keys the aggregator derives are the ones a broker uses.
import { randomBytes } from "node:crypto";
import { Redis } from "ioredis";
import { afterAll, afterEach, describe, expect, it } from "vitest";
import { ProofFabric } from "../fabric.ts";
import { deleteKeysWithPrefix } from "../redis.ts";
import { ProofBroker } from "./broker.ts";
import { presenceTimingsOf, sightBrokers } from "./presence.ts";

const REDIS_URL = process.env.TEST_REDIS_URL ?? "redis://127.0.0.1:6379";
const prefix = `pbtest-${randomBytes(5).toString("hex")}`;
const opened: { fabric: ProofFabric; broker: ProofBroker }[] = [];
const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

async function openBroker(leaseMs: number, start = true) {
  const fabric = await ProofFabric.open({ redisUrl: REDIS_URL, prefix, leaseMs });
  const broker = new ProofBroker(fabric, {
    leaseMs,
    maxRetryableFailsPerAgent: 3,
    maxJobFailsPerOperator: 4,
    maxJobAttempts: 5,
  });
  opened.push({ fabric, broker });
  if (start) await broker.start();
  return broker;
}

afterEach(async () => {
  for (const { fabric, broker } of opened.splice(0)) {
    await broker.close();
    await fabric.close();
  }
  const redis = new Redis(REDIS_URL);
  await deleteKeysWithPrefix(redis, prefix);
  await redis.quit();
});
afterAll(async () => {
  const redis = new Redis(REDIS_URL);
  await deleteKeysWithPrefix(redis, prefix);
  await redis.quit();
});

const sight = (b: ProofBroker) => sightBrokers(b.fabric.redis, prefix);

/**
 * A broker (not started) that follows a readiness check failing until `serve()`, as a relay
 * does while it starts (not ready yet).
 */
async function startingBroker(leaseMs: number) {
  const b = await openBroker(leaseMs, false);
  const state = { serving: false };
  b.presence.followReadiness(
    async () => {
      if (!state.serving) throw new Error("not serving");
    },
    { readyYet: false },
  );
  return {
    b,
    serve(on = true) {
      state.serving = on;
      b.presence.checkReadinessNow();
    },
  };
}

describe("the brokers' presence as the aggregator reads it", () => {
  it("derives the broker's own refresh period and freshness from LEASE_MS", async () => {
    for (const leaseMs of [300, 2000, 15_000, 120_000]) {
      const b = await openBroker(leaseMs, false);
      expect(presenceTimingsOf(leaseMs)).toEqual({
        intervalMs: b.presence.intervalMs,
        freshMs: b.presence.freshMs,
      });
    }
  });

  it("sees a refreshing broker serving, under the fabric's prefix, and when it left", async () => {
    const b = await openBroker(2000, false);
    expect(await sight(b)).toMatchObject({ servingAt: null, leftAt: null });
    await b.start();
    const on = await sight(b);
    expect(on.servingAt).not.toBeNull();
    expect(on.now - on.servingAt!).toBeLessThanOrEqual(b.presence.freshMs);
    await b.presence.stop();
    const off = await sight(b);
    expect(off.servingAt).toBeNull();
    // Its last refresh, kept as it left cleanly.
    expect(off.leftAt).toBeGreaterThanOrEqual(on.servingAt!);
    expect(off.leftAt).toBeLessThanOrEqual(off.now);
  });

  it.each([
    ["fails", () => Promise.reject(new Error("connection refused"))],
    ["goes unanswered", () => new Promise<never>(() => {})],
  ] as const)(
    "counts a broker whose readiness check %s as absent, from its last good answer",
    async (_name, broken) => {
      const b = await openBroker(1000);
      let check: () => Promise<unknown> = () => Promise.resolve();
      b.presence.followReadiness(() => check());
      await sleep(3 * b.presence.intervalMs);
      const ready = await sight(b);
      expect(ready.now - ready.servingAt!).toBeLessThanOrEqual(b.presence.freshMs);

      check = broken;
      const brokeAt = await sight(b);
      // A check's answer counts from the next refresh, a hung one after freshMs.
      await sleep(b.presence.freshMs + 4 * b.presence.intervalMs);
      const down = await sight(b);
      expect(down.servingAt).not.toBeNull();
      expect(down.servingAt!).toBeLessThanOrEqual(brokeAt.now + b.presence.intervalMs);
      expect(down.now - down.servingAt!).toBeGreaterThan(b.presence.freshMs);
      // Its stretch is still refreshed: the lapse rule still counts it.
      const seen = Number(await b.fabric.redis.zscore(b.presence.seenKey, b.presence.id));
      expect(down.now - seen).toBeLessThanOrEqual(b.presence.freshMs);

      check = () => Promise.resolve();
      // A hung check is given up on after freshMs: the next one answers.
      await sleep(b.presence.freshMs + 3 * b.presence.intervalMs);
      const back = await sight(b);
      expect(back.now - back.servingAt!).toBeLessThanOrEqual(b.presence.freshMs);
    },
  );

  it("counts a broker not ready yet (a relay still starting) as never seen serving", async () => {
    const { b, serve } = await startingBroker(1000);
    await b.start();
    const started = await sight(b);
    await sleep(b.presence.freshMs + 3 * b.presence.intervalMs);
    const starting = await sight(b);
    // Recorded (the lapse rule counts it), but never seen serving: not even at its start, or a
    // relay in a crash loop would date a gap with no relay from its latest start.
    expect(started.servingAt).toBeNull();
    expect(starting.servingAt).toBeNull();

    serve();
    await sleep(3 * b.presence.intervalMs);
    const up = await sight(b);
    expect(up.now - up.servingAt!).toBeLessThanOrEqual(b.presence.freshMs);

    // It stops serving, refreshes on for a while, then leaves: it was last seen serving when it
    // stopped, not at its last refresh.
    const stoppedAt = (await sight(b)).now;
    serve(false);
    await sleep(3 * b.presence.intervalMs);
    await b.presence.stop();
    const left = await sight(b);
    expect(left.leftAt!).toBeLessThanOrEqual(stoppedAt + b.presence.intervalMs);
  });

  it("logs a gap with no broker serving when a broker ends it, and none while one serves", async () => {
    const a = await openBroker(1000);
    // A second broker starting while the first serves ends no gap.
    const b = await openBroker(1000);
    expect((await sight(b)).gaps).toEqual([]);
    await b.presence.stop();
    await a.presence.stop();
    const left = (await sight(a)).leftAt!;
    await sleep(a.presence.freshMs + 500);
    // Every broker gone for longer than freshMs: the next one to serve logs the gap it ends.
    const c = await openBroker(1000);
    const after = await sight(c);
    expect(after.gaps).toHaveLength(1);
    expect(after.gaps[0]!.from).toBe(left);
    expect(after.gaps[0]!.to).toBeGreaterThan(left + a.presence.freshMs);
    expect(after.gaps[0]!.to).toBeLessThanOrEqual(after.now);
    // Its later refreshes end nothing more.
    await sleep(3 * c.presence.intervalMs);
    expect((await sight(c)).gaps).toEqual(after.gaps);
  });

  it("logs the gap of a lone broker that could not serve for a while, from its last good answer", async () => {
    const b = await openBroker(1000);
    let up = true;
    b.presence.followReadiness(async () => {
      if (!up) throw new Error("connection refused");
    });
    await sleep(3 * b.presence.intervalMs);
    up = false;
    await sleep(b.presence.freshMs + 4 * b.presence.intervalMs);
    const down = await sight(b);
    expect(down.gaps).toEqual([]);
    up = true;
    await sleep(3 * b.presence.intervalMs);
    const back = await sight(b);
    expect(back.gaps).toHaveLength(1);
    expect(back.gaps[0]!.from).toBe(down.servingAt);
    expect(back.gaps[0]!.to).toBeGreaterThan(down.now);
  });

  it("dates a gap from a killed broker's last sighting serving, even once it is forgotten", async () => {
    const { b: c, serve } = await startingBroker(1000);
    const redis = c.fabric.redis;
    const [secs] = await redis.time();
    const now = Number(secs) * 1000;
    // A broker killed two hours ago (no clean close: its entries stay until forgotten, an hour
    // after its last refresh), and a lapse claim's refresh of another's `seen` just now, which
    // says nothing of serving.
    const killedAt = now - 2 * 3_600_000;
    await redis.zadd(c.presence.seenKey, killedAt, "killed", now, "claimer");
    await redis.zadd(c.presence.servingKey, killedAt, "killed");
    await c.start();
    // Its first refreshes, not ready yet, forget the killed broker but keep when it last served.
    expect(await redis.zscore(c.presence.seenKey, "killed")).toBeNull();
    expect(Number(await redis.get(c.presence.leftKey))).toBe(killedAt);
    serve();
    await sleep(3 * c.presence.intervalMs);
    const { gaps } = await sight(c);
    expect(gaps).toHaveLength(1);
    expect(gaps[0]!.from).toBe(killedAt);
    expect(gaps[0]!.to).toBeGreaterThan(now);
  });
});
