// The market's live stream, GET /v1/events, on real Redis and Postgres: a `retry:` hint first,
// keepalive comments, an id on every event; a client resuming with Last-Event-ID (header or
// query) gets exactly the events it missed; filters by block and prover; an id no longer in the
// log gets a `reset` event; and any number of streams share one reader of the log per relay.
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { ORIGIN, readEventsAfter } from "../apps/relay/src/services/event-hub.ts";
import { account, openAuction } from "./fixtures.ts";
import { eventually, type Stack, startStack } from "./harness.ts";
import { type OpenStream, openEventStream, type StreamEvent } from "./support/sse.ts";

let stack: Stack;

beforeAll(async () => {
  stack = await startStack({
    backend: "postgres",
    aggregator: false,
    env: { SSE_KEEPALIVE_MS: "200", SSE_STREAMS_PER_IP: "0", SSE_STREAMS_MAX: "0" },
  });
});
afterAll(async () => stack?.close());

const url = (query = "") => `${stack.url}/v1/events${query}`;

async function open(blockNumber: number) {
  const o = await openAuction(blockNumber);
  await stack.client.openAuction(o.auction, o.txs, o.signature);
}

const blockOf = (e: StreamEvent) => (e.data as { block: number | null }).block;
const has = (s: OpenStream, event: string, block: number) => () =>
  Promise.resolve(s.events.some((e) => e.event === event && blockOf(e) === block));
/** The events before the first one of `block` (a marker written after everything of interest). */
const before = (s: OpenStream, block: number) =>
  s.events.slice(
    0,
    s.events.findIndex((e) => blockOf(e) === block),
  );
const position = (id: string) => id.split("-").map((x) => BigInt(x)) as [bigint, bigint];
const ascending = (ids: string[]) =>
  ids.every((id, i) => {
    if (i === 0) return true;
    const [t0, s0] = position(ids[i - 1]!);
    const [t1, s1] = position(id);
    return t1 > t0 || (t1 === t0 && s1 > s0);
  });

/** A mixed-case address with one letter's case flipped: its EIP-55 checksum no longer holds. */
function badChecksum(address: string): string {
  const i = address.slice(2).search(/[a-fA-F]/) + 2;
  const c = address[i]!;
  const flipped = c === c.toLowerCase() ? c.toUpperCase() : c.toLowerCase();
  return address.slice(0, i) + flipped + address.slice(i + 1);
}

async function penalty(id: string, blockNumber: number, operator: string, amount = "7") {
  await stack.db.prisma.penalty.create({
    data: {
      id,
      blockNumber,
      jobId: `${blockNumber}:0:0`,
      operator,
      kind: "withholding",
      amount,
      createdAt: BigInt(Date.now()),
    },
  });
}

describe("GET /v1/events", { timeout: 120_000 }, () => {
  it("starts with a retry hint, keeps idle streams alive and gives every event an id", async () => {
    const s = await openEventStream(url());
    try {
      expect(s.status).toBe(200);
      await eventually(async () => s.text().length > 0);
      expect(s.text()).toMatch(/^retry: \d+\n\n/);
      await open(201);
      await eventually(has(s, "stage", 201));
      const block = await stack.client.getBlock(201);
      expect(s.events.map((e) => [e.event, e.data])).toEqual([
        [
          "auction",
          expect.objectContaining({ block: 201, kind: "opened", txCount: 4, maxFeeBps: 3000 }),
        ],
        ["stage", { block: 201, stage: "auction_open", at: block.stages.auction_open }],
      ]);
      const ids = s.events.map((e) => e.id!);
      for (const id of ids) expect(id).toMatch(/^\d+-\d+$/);
      expect(ascending(ids)).toBe(true);
      await eventually(async () => s.text().split(": keepalive\n\n").length > 3);
    } finally {
      s.close();
    }
  });

  it("resumes after the last event seen with exactly the events missed", async () => {
    const first = await openEventStream(url());
    await open(202);
    await eventually(has(first, "stage", 202));
    const lastSeen = first.events.at(-1)!.id!;
    first.close();
    // Missed while disconnected.
    await open(203);
    await open(204);

    // The whole retained log, from its start, as the reference.
    const whole = await openEventStream(url("?lastEventId=0-0"));
    await open(205); // a marker: everything before it has been sent once it arrives
    await eventually(has(whole, "stage", 205));
    const all = before(whole, 205);
    const missed = all.slice(all.findIndex((e) => e.id === lastSeen) + 1);
    expect(missed.map((e) => [e.event, blockOf(e)])).toEqual([
      ["auction", 203],
      ["stage", 203],
      ["auction", 204],
      ["stage", 204],
    ]);

    const byHeader = await openEventStream(url(), { lastEventId: lastSeen });
    const byQuery = await openEventStream(url(`?lastEventId=${lastSeen}`));
    try {
      for (const s of [byHeader, byQuery]) {
        await eventually(has(s, "stage", 205));
        expect(before(s, 205)).toEqual(missed);
        const ids = s.events.map((e) => e.id!);
        expect(new Set(ids).size).toBe(ids.length);
        expect(ascending(ids)).toBe(true);
      }
    } finally {
      for (const s of [whole, byHeader, byQuery]) s.close();
    }
  });

  it("filters by block and by prover (any casing)", async () => {
    const x = account(0xa1).address;
    const y = account(0xa2).address;
    const byBlock = await openEventStream(url("?block=203&lastEventId=0-0"));
    const byProver = await openEventStream(url(`?prover=${x.toLowerCase()}&lastEventId=0-0`));
    try {
      await penalty("p-1", 203, x);
      await penalty("p-2", 204, x);
      await penalty("p-3", 203, y);
      await open(206);
      await penalty("p-end", 203, x, "8"); // after everything above, for both streams
      const ended = (s: OpenStream) => async () =>
        s.events.some(
          (e) => e.event === "penalty" && (e.data as { amount: string }).amount === "8",
        );
      await eventually(ended(byBlock));
      await eventually(ended(byProver));
      expect(
        byBlock.events.map((e) => [e.event, (e.data as { operator?: string }).operator]),
      ).toEqual([
        ["auction", undefined],
        ["stage", undefined],
        ["penalty", x],
        ["penalty", y],
        ["penalty", x],
      ]);
      expect(byBlock.events.every((e) => blockOf(e) === 203)).toBe(true);
      expect(byProver.events.map((e) => [e.event, blockOf(e)])).toEqual([
        ["penalty", 203],
        ["penalty", 204],
        ["penalty", 203],
      ]);
      expect(byProver.events.every((e) => (e.data as { operator: string }).operator === x)).toBe(
        true,
      );
    } finally {
      byBlock.close();
      byProver.close();
    }
  });

  it("refuses a bad filter or event id with 400 before the stream opens", async () => {
    for (const [query, lastEventId, code] of [
      ["?prover=0x1234", undefined, "VALIDATION_FAILED"],
      [`?prover=${badChecksum(account(0xa1).address)}`, undefined, "BAD_ADDRESS_CHECKSUM"],
      ["?block=-1", undefined, "INVALID_INTEGER"],
      ["?block=abc", undefined, "INVALID_INTEGER"],
      ["?lastEventId=12", undefined, "VALIDATION_FAILED"],
      ["", "not-an-id", "VALIDATION_FAILED"],
      ["", "1-99999999999999999999", "VALIDATION_FAILED"],
    ] as const) {
      const s = await openEventStream(url(query), { lastEventId });
      s.close();
      expect(s.status, `${query} ${lastEventId}`).toBe(400);
      expect((s.body as { error: { code: string } }).error.code, query).toBe(code);
    }
  });

  it("sends a reset event for an id no longer in the log, then live events", async () => {
    const s0 = await openEventStream(url("?lastEventId=0-0"));
    await open(207);
    await eventually(has(s0, "stage", 207));
    s0.close();
    const gone = s0.events.find((e) => blockOf(e) === 201)!.id!;
    const [txid, id] = position(gone);
    // As the retention window would.
    await stack.db.prisma.marketEvent.deleteMany({
      where: { OR: [{ txid: { lt: txid } }, { txid, id: { lte: id } }] },
    });
    const s = await openEventStream(url(), { lastEventId: gone });
    try {
      await eventually(async () => s.events.length > 0);
      expect(s.events[0]!.event).toBe("reset");
      expect(s.events[0]!.id).toBe((s.events[0]!.data as { head: string }).head);
      await open(208);
      await eventually(has(s, "stage", 208));
      expect(s.events.slice(1).map((e) => blockOf(e))).toEqual([208, 208]);
    } finally {
      s.close();
    }
  });

  it("serves 50 streams from one reader of the log", async () => {
    const hub = stack.relay.ctx.events;
    await eventually(async () => !hub.running);
    const before0 = { ...hub.stats };
    const streams = await Promise.all(Array.from({ length: 50 }, () => openEventStream(url())));
    try {
      expect(streams.map((s) => s.status)).toEqual(Array(50).fill(200));
      expect(hub.size).toBe(50);
      await open(209);
      await eventually(async () =>
        streams.every((s) => s.events.some((e) => blockOf(e) === 209 && e.event === "stage")),
      );
      for (const s of streams) {
        expect(s.events.map((e) => [e.event, blockOf(e)])).toEqual([
          ["auction", 209],
          ["stage", 209],
        ]);
      }
      const d = (k: keyof typeof hub.stats) => hub.stats[k] - before0[k];
      // One loop for all of them: one query to find the log's head, then one per poll (and a
      // periodic prune), whatever the number of streams.
      expect(d("starts")).toBe(1);
      expect(d("polls")).toBeGreaterThan(0);
      expect(d("queries")).toBe(d("starts") + d("polls") + d("prunes"));
    } finally {
      for (const s of streams) s.close();
    }
    // And it stops once no stream is left.
    await eventually(async () => !hub.running && hub.size === 0);
  });
});

describe("GET /v1/events on the embedded database (PGlite)", { timeout: 120_000 }, () => {
  let embedded: Stack;
  beforeAll(async () => {
    embedded = await startStack({ backend: "pglite", aggregator: false });
  });
  afterAll(async () => embedded?.close());

  it("streams and resumes the same way", async () => {
    const openOn = async (n: number) => {
      const o = await openAuction(n);
      await embedded.client.openAuction(o.auction, o.txs, o.signature);
    };
    const s = await openEventStream(`${embedded.url}/v1/events`);
    await openOn(301);
    await eventually(has(s, "stage", 301));
    const lastSeen = s.events.at(-1)!.id!;
    s.close();
    await openOn(302);
    const resumed = await openEventStream(`${embedded.url}/v1/events`, { lastEventId: lastSeen });
    try {
      await openOn(303);
      await eventually(has(resumed, "stage", 303));
      expect(resumed.events.map((e) => [e.event, blockOf(e)])).toEqual([
        ["auction", 302],
        ["stage", 302],
        ["auction", 303],
        ["stage", 303],
      ]);
    } finally {
      resumed.close();
    }
  });
});

describe("the event log's retention window", { timeout: 120_000 }, () => {
  let short: Stack;
  beforeAll(async () => {
    short = await startStack({
      backend: "postgres",
      aggregator: false,
      env: { EVENTS_RETENTION_MS: "1000" },
    });
  });
  afterAll(async () => short?.close());

  it("prunes events past it while a stream is open; resuming from one gets a reset", async () => {
    const o = await openAuction(401);
    await short.client.openAuction(o.auction, o.txs, o.signature);
    const s = await openEventStream(`${short.url}/v1/events?lastEventId=0-0`);
    let gone: string;
    try {
      await eventually(has(s, "stage", 401));
      gone = s.events.find((e) => blockOf(e) === 401)!.id!;
      await eventually(
        async () =>
          (await short.db.prisma.marketEvent.count({ where: { blockNumber: 401 } })) === 0,
        30_000,
      );
    } finally {
      s.close();
    }
    const resumed = await openEventStream(`${short.url}/v1/events`, { lastEventId: gone });
    try {
      await eventually(async () => resumed.events.length > 0);
      expect(resumed.events[0]!.event).toBe("reset");
    } finally {
      resumed.close();
    }
  });

  it("a catch-up read after an event the log no longer holds says so, and reads nothing past the gap", async () => {
    const o = await openAuction(402);
    await short.client.openAuction(o.auction, o.txs, o.signature);
    const upTo = { txid: BigInt(Number.MAX_SAFE_INTEGER), seq: 0n };
    const rows = await eventually(async () => {
      const r = await short.db.prisma.marketEvent.findMany({
        where: { blockNumber: 402 },
        orderBy: [{ txid: "asc" }, { id: "asc" }],
      });
      return r.length >= 2 ? r : null;
    });
    const from = { txid: rows[0]!.txid, seq: rows[0]!.id };
    // Still held: the events after it (settled ones), in order.
    const read = await eventually(async () => {
      const r = await readEventsAfter(short.db.prisma, from, 10, upTo);
      return r && r.length > 0 ? r : null;
    });
    expect(read[0]!.seq).toBe(rows[1]!.id);
    // Pruned (the window is 1 s; the relay prunes while a stream is open): the read says the
    // log no longer holds it.
    const s = await openEventStream(`${short.url}/v1/events`);
    try {
      await eventually(
        async () =>
          (await short.db.prisma.marketEvent.count({ where: { blockNumber: 402 } })) === 0,
        30_000,
      );
    } finally {
      s.close();
    }
    expect(await readEventsAfter(short.db.prisma, from, 10, upTo)).toBeNull();
    // The log's start needs no anchor.
    expect(await readEventsAfter(short.db.prisma, ORIGIN, 10, upTo)).not.toBeNull();
  });
});
