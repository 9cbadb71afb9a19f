// The fabric keeper's first probe in a process that has just started: its connection to Redis
// may still be under way, which is no outage (an outage opened then would be dated from each
// block's last change and extend every live deadline by that much).
import { randomBytes } from "node:crypto";
import { ProofFabric } from "@prover-boost/queue";
import { afterAll, describe, expect, it } from "vitest";
import type { AggregatorContext } from "./context.ts";
import { FabricKeeper } from "./rebuild.ts";

const fabrics: ProofFabric[] = [];
afterAll(async () => {
  for (const f of fabrics) await f.close();
});

describe("the fabric keeper's first probe", () => {
  it("waits for the first connection instead of opening an outage", async () => {
    const fabric = await ProofFabric.open({
      redisUrl: process.env.TEST_REDIS_URL ?? "redis://127.0.0.1:6379",
      prefix: `pbtest-${randomBytes(5).toString("hex")}`,
      leaseMs: 1000,
      subscribe: false,
      checkStalled: false,
    });
    fabrics.push(fabric);
    const outages: string[] = [];
    // An outage would be written to Postgres: this context has none, and records the attempt.
    const prisma = new Proxy(
      {},
      {
        get: (_t, name) => {
          outages.push(String(name));
          return () => Promise.resolve(0);
        },
      },
    );
    const log = { warn: () => {}, error: () => {}, info: () => {} };
    const ctx = { fabric, prisma, log, now: () => Date.now() } as unknown as AggregatorContext;
    const keeper = new FabricKeeper(ctx);
    expect(fabric.redis.status).not.toBe("ready");
    expect(await keeper.probe()).toBe(true);
    expect(outages).toEqual([]);
    expect(keeper.isUp).toBe(true);
  });
});
