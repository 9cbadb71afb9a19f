// Write coalescing on a real Redis: the commands a client sends in one pass of the event loop
// leave its socket in one write, in order, and the same holds on the socket of a reconnection.

import { randomBytes } from "node:crypto";
import type { Socket } from "node:net";
import { planTree } from "@prover-boost/core";
import { Redis as IORedis } from "ioredis";
import { afterEach, describe, expect, it } from "vitest";
import { ProofFabric } from "./fabric.ts";
import {
  coalesceWrites,
  createRedis,
  deleteKeysWithPrefix,
  type Redis,
  redisOptions,
} from "./redis.ts";

const redisUrl = process.env.TEST_REDIS_URL ?? "redis://127.0.0.1:6379";

/** Counts the writes a client's current socket hands to the kernel (one per write or writev). */
function countWrites(client: Redis): { readonly n: number } {
  const socket = client.stream as Socket & {
    _write: (...a: unknown[]) => void;
    _writev: (...a: unknown[]) => void;
  };
  const counter = { n: 0 };
  for (const name of ["_write", "_writev"] as const) {
    const inner = socket[name];
    socket[name] = function (this: Socket, ...args: unknown[]) {
      counter.n++;
      return inner.apply(this, args);
    };
  }
  return counter;
}

const ready = (client: Redis) =>
  client.status === "ready"
    ? Promise.resolve()
    : new Promise<void>((resolve) => client.once("ready", () => resolve()));

/** A group's key prefix and the clients its tests open, closed and their keys deleted after each. */
function clientsOfGroup(name: string) {
  const prefix = `pbtest-${name}-${randomBytes(4).toString("hex")}`;
  const clients: Redis[] = [];
  afterEach(async () => {
    if (clients[0]) await deleteKeysWithPrefix(clients[0], prefix);
    for (const c of clients.splice(0)) c.disconnect();
  });
  return { prefix, clients };
}

/**
 * Runs `fn` with the base fetcher of a fabric under `prefix` holding a `txs`-transaction tree of
 * block 1, one job already taken (which opens the fetcher); the fabric is removed afterwards.
 */
async function withFetcher(
  prefix: string,
  txs: number,
  fn: (
    fetcher: NonNullable<ReturnType<ProofFabric["openFetcherOf"]>>,
    fabric: ProofFabric,
  ) => Promise<void>,
): Promise<void> {
  const fabric = await ProofFabric.open({
    redisUrl,
    prefix,
    leaseMs: 60_000,
    checkStalled: false,
    subscribe: false,
  });
  try {
    await fabric.addTree(
      1,
      planTree(txs),
      () => 1,
      () => [],
    );
    expect((await fabric.take(1, ["base"], "t-0")).taken).not.toBeNull();
    await fn(fabric.openFetcherOf(1, "base")!, fabric);
  } finally {
    await fabric.obliterate();
    await fabric.close();
  }
}

describe("write coalescing", () => {
  const { prefix, clients } = clientsOfGroup("coalesce");

  /** A client as BullMQ opens one (no auto-pipelining: one write per command by itself). */
  async function plainClient(coalesce: boolean): Promise<Redis> {
    const client = new IORedis(redisOptions(redisUrl));
    clients.push(client);
    if (coalesce) coalesceWrites(client);
    await ready(client);
    return client;
  }

  /** Sends `count` increments of one key at once; their replies, in the order sent. */
  const burst = (client: Redis, key: string, count: number) =>
    Promise.all(Array.from({ length: count }, () => client.incr(key)));

  it("sends the commands of one pass in one write, in order", async () => {
    const client = await plainClient(true);
    const writes = countWrites(client);
    const replies = await burst(client, `${prefix}:n`, 20);
    expect(replies).toEqual(Array.from({ length: 20 }, (_, i) => i + 1));
    expect(writes.n).toBe(1);
  });

  it("without it, the same client writes each command separately", async () => {
    // The control: what the test above counts is the coalescing, not ioredis batching by itself.
    const client = await plainClient(false);
    const writes = countWrites(client);
    await burst(client, `${prefix}:m`, 20);
    expect(writes.n).toBe(20);
  });

  it("sends the commands of later passes too (nothing is held past its pass)", async () => {
    const client = await plainClient(true);
    const writes = countWrites(client);
    const key = `${prefix}:k`;
    for (let i = 1; i <= 5; i++) {
      await new Promise((r) => setTimeout(r, 5));
      expect(await client.incr(key)).toBe(i);
    }
    expect(writes.n).toBe(5);
  });

  it("holds the writes of a reconnected client's new socket as well", async () => {
    const client = createRedis(redisUrl, { autoPipelining: false });
    clients.push(client);
    await ready(client);
    const first = client.stream;
    client.disconnect(true);
    await new Promise((r) => client.once("ready", r));
    expect(client.stream).not.toBe(first);
    const writes = countWrites(client);
    expect(await burst(client, `${prefix}:r`, 10)).toEqual(
      Array.from({ length: 10 }, (_, i) => i + 1),
    );
    expect(writes.n).toBe(1);
  });

  it("holds the writes of a fabric's BullMQ connections (the pops of a pass leave together)", async () => {
    await withFetcher(`${prefix}-fabric`, 4, async (fetcher) => {
      const client = (await fetcher.getBackend().client) as unknown as Redis;
      const writes = countWrites(client);
      const taken = await Promise.all(
        ["t-1", "t-2", "t-3"].map((token) => fetcher.getNextJob(token, { block: false })),
      );
      expect(new Set(taken.map((job) => job?.id)).size).toBe(3);
      expect(writes.n).toBe(1);
    });
  });
});

describe("a fabric client's connection that drops", () => {
  const { prefix, clients } = clientsOfGroup("drop");

  it("fails the commands whose replies it took at the drop, not at their deadline", async () => {
    // A deadline far beyond the test's wait: a command left to it would not fail in time.
    const client = createRedis(redisUrl, { commandTimeoutMs: 120_000 });
    const observer = createRedis(redisUrl);
    clients.push(observer, client);
    await Promise.all([ready(client), ready(observer)]);
    const key = `${prefix}:ran`;
    // Redis runs the command, and its reply is never read: the socket is not read from, then
    // dropped.
    const socket = client.stream as Socket;
    socket.pause();
    const sent = client.incr(key);
    const outcome = sent.then(
      () => "answered",
      (err: Error) => err.message,
    );
    for (let i = 0; (await observer.get(key)) !== "1"; i++) {
      if (i > 500) throw new Error("the command never ran");
      await new Promise((r) => setTimeout(r, 10));
    }
    socket.destroy();
    const failed = await Promise.race([
      outcome,
      new Promise<string>((r) => setTimeout(() => r("still waiting"), 20_000)),
    ]);
    expect(failed).toMatch(/^Connection is closed/);
    // The client reconnects by itself, and nothing was sent again.
    await new Promise((r) => client.once("ready", r));
    expect(await client.get(key)).toBe("1");
  });
});

describe("reconnection", () => {
  const { prefix } = clientsOfGroup("reconnect");

  /** The waits before a client's first `n` attempts to reconnect, as its options set them. */
  const waits = (client: Redis, n = 40) =>
    Array.from({ length: n }, (_, i) => client.options.retryStrategy?.(i + 1));

  it("tries again within a second on every connection of a fabric, BullMQ's own included", async () => {
    // BullMQ's default for its connections grows to 20 s: after an outage of 20 s, a relay's
    // fetchers came back 18 s after Redis did, and results waited for them while lapses were swept.
    await withFetcher(`${prefix}-fabric`, 2, async (fetcher, fabric) => {
      const fetcherClient = (await fetcher.getBackend().client) as unknown as Redis;
      for (const client of [fabric.redis, fetcherClient]) {
        const all = waits(client);
        expect(all.every((ms) => typeof ms === "number" && ms > 0 && ms <= 1000)).toBe(true);
      }
    });
  });
});
