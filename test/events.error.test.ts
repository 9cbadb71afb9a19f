// Server-sent event streams under stress: an idle stream gets keepalive comments, a database
// outage ends it with an `error` event and a `retry:` hint (not a silent, dead stream), and the
// streams a relay holds are capped per client IP (429) and in all (503).

import pg from "pg";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { account, openAuction } from "./fixtures.ts";
import { eventually, TEST_DATABASE_URL } from "./harness.ts";
import { ask, type ProxiedRelay, startProxiedRelay } from "./support/proxied-relay.ts";
import { openEventStream } from "./support/sse.ts";

interface EventStream {
  status: number;
  /** Everything received so far. */
  text(): string;
  /** Resolves when the relay ends the stream. */
  ended: Promise<void>;
  close(): void;
}

async function openStream(url: string): Promise<EventStream> {
  const abort = new AbortController();
  const res = await fetch(url, { signal: abort.signal });
  let text = "";
  const reader = res.body!.getReader();
  const decoder = new TextDecoder();
  const ended = (async () => {
    try {
      for (;;) {
        const { done, value } = await reader.read();
        if (done) return;
        text += decoder.decode(value, { stream: true });
      }
    } catch {
      // closed by us
    }
  })();
  return { status: res.status, text: () => text, ended, close: () => abort.abort() };
}

async function within(p: Promise<unknown>, ms: number, what: string) {
  let timer: NodeJS.Timeout | undefined;
  await Promise.race([
    p,
    new Promise((_, reject) => {
      timer = setTimeout(() => reject(new Error(what)), ms);
    }),
  ]).finally(() => clearTimeout(timer));
}

const errorCode = (body: unknown) => (body as { error?: { code?: string } }).error?.code;

async function relayWithBlock(env: Record<string, string>, blockNumber: number) {
  const r = await startProxiedRelay(env);
  const open = await openAuction(blockNumber);
  await r.client.openAuction(open.auction, open.txs, open.signature);
  return r;
}

describe("an event stream", { timeout: 180_000 }, () => {
  let r: ProxiedRelay;
  beforeAll(async () => {
    r = await relayWithBlock(
      {
        SSE_KEEPALIVE_MS: "200",
        DATABASE_CONNECT_TIMEOUT_MS: "1000",
        DATABASE_QUERY_TIMEOUT_MS: "1500",
      },
      5,
    );
  });
  afterAll(async () => {
    await r?.close();
  });

  it("sends keepalive comments while idle", async () => {
    const s = await openStream(`${r.url}/v1/blocks/5/events`);
    try {
      expect(s.status).toBe(200);
      await eventually(async () => s.text().includes("event: stage"), 30_000);
      await eventually(async () => s.text().split(": keepalive\n\n").length > 3, 30_000);
    } finally {
      s.close();
    }
  });

  it("ends with an error event and a retry hint when the database goes away", async () => {
    const s = await openStream(`${r.url}/v1/blocks/5/events`);
    try {
      await eventually(async () => s.text().includes("event: stage"), 30_000);
      r.databaseLink.cut();
      let timer: NodeJS.Timeout | undefined;
      await Promise.race([
        s.ended,
        new Promise((_, reject) => {
          timer = setTimeout(() => reject(new Error("the stream did not end")), 60_000);
        }),
      ]).finally(() => clearTimeout(timer));
      expect(s.text()).toMatch(/retry: \d+\n/);
      const error = /event: error\ndata: (.*)\n\n/.exec(s.text());
      expect(error).not.toBeNull();
      expect(errorCode(JSON.parse(error![1]!))).toBe("UNAVAILABLE");
    } finally {
      s.close();
      r.databaseLink.restore();
    }
    // And streams open again once it is back.
    await eventually(
      async () => {
        const again = await openStream(`${r.url}/v1/blocks/5/events`);
        again.close();
        return again.status === 200;
      },
      60_000,
      200,
    );
  });
});

describe("the live stream through a database outage", { timeout: 180_000 }, () => {
  let r: ProxiedRelay;
  beforeAll(async () => {
    r = await relayWithBlock(
      { DATABASE_CONNECT_TIMEOUT_MS: "1000", DATABASE_QUERY_TIMEOUT_MS: "1500" },
      9,
    );
  });
  afterAll(async () => {
    await r?.close();
  });

  it("ends with an error event, then a resume by id gets what happened meanwhile, once", async () => {
    const s = await openEventStream(`${r.url}/v1/events?lastEventId=0-0`);
    expect(s.status).toBe(200);
    await eventually(async () => s.events.some((e) => e.event === "stage"), 30_000);
    const lastSeen = s.events.at(-1)!.id!;
    r.databaseLink.cut();
    // Meanwhile another process (here, straight to Postgres) records a penalty.
    const db = new pg.Client({ connectionString: TEST_DATABASE_URL });
    await db.connect();
    try {
      await db.query(`SET search_path TO "${r.schema}"`);
      await db.query(
        `INSERT INTO "Penalty" (id, "blockNumber", "jobId", operator, kind, amount, "createdAt")
         VALUES ('outage-1', 9, '9:0:0', $1, 'withholding', 5, $2)`,
        [account(0xb1).address, Date.now()],
      );
    } finally {
      await db.end();
    }
    await within(s.ended, 60_000, "the stream did not end");
    expect(s.text()).toMatch(/retry: \d+\n/);
    const error = s.events.find((e) => e.event === "error");
    expect(errorCode(error?.data)).toBe("UNAVAILABLE");
    expect(s.events.some((e) => e.event === "penalty")).toBe(false);

    r.databaseLink.restore();
    await eventually(async () => (await ask(`${r.url}/v1/blocks/9`)).status === 200, 60_000, 200);
    const resumed = await openEventStream(`${r.url}/v1/events`, { lastEventId: lastSeen });
    try {
      expect(resumed.status).toBe(200);
      await eventually(async () => resumed.events.length > 0, 30_000);
      expect(resumed.events.map((e) => [e.event, e.data])).toEqual([
        [
          "penalty",
          {
            block: 9,
            jobId: "9:0:0",
            operator: account(0xb1).address,
            worker: null,
            kind: "withholding",
            amount: "5",
          },
        ],
      ]);
    } finally {
      resumed.close();
    }
  });
});

describe("event stream caps", { timeout: 180_000 }, () => {
  it("refuses a client over its per-IP cap with 429, and frees the slot when a stream ends", async () => {
    const r = await relayWithBlock({ SSE_STREAMS_PER_IP: "2", SSE_STREAMS_MAX: "0" }, 6);
    const streams: EventStream[] = [];
    try {
      for (let i = 0; i < 2; i++) streams.push(await openStream(`${r.url}/v1/blocks/6/events`));
      expect(streams.map((s) => s.status)).toEqual([200, 200]);
      const over = await ask(`${r.url}/v1/blocks/6/events`);
      expect(over.status).toBe(429);
      expect(errorCode(over.body)).toBe("RATE_LIMITED");
      // The cap counts both stream routes together.
      const overLive = await ask(`${r.url}/v1/events`);
      expect(overLive.status).toBe(429);
      expect(errorCode(overLive.body)).toBe("RATE_LIMITED");
      streams.pop()!.close();
      await eventually(
        async () => {
          const s = await openStream(`${r.url}/v1/blocks/6/events`);
          if (s.status === 200) streams.push(s);
          return s.status === 200;
        },
        30_000,
        100,
      );
    } finally {
      for (const s of streams) s.close();
      await r.close();
    }
  });

  it("refuses any stream over the relay's total cap with 503 and Retry-After", async () => {
    const r = await relayWithBlock({ SSE_STREAMS_PER_IP: "0", SSE_STREAMS_MAX: "1" }, 8);
    const first = await openStream(`${r.url}/v1/blocks/8/events`);
    try {
      expect(first.status).toBe(200);
      const over = await ask(`${r.url}/v1/blocks/8/events`);
      expect(over.status).toBe(503);
      expect(errorCode(over.body)).toBe("UNAVAILABLE");
      expect(Number(over.headers.get("retry-after"))).toBeGreaterThan(0);
      const overLive = await ask(`${r.url}/v1/events`);
      expect(overLive.status).toBe(503);
      expect(errorCode(overLive.body)).toBe("UNAVAILABLE");
    } finally {
      first.close();
      await r.close();
    }
  });
});
