// The relay's one reader of the market's event log (the MarketEvent table, appended by triggers in
// the transaction of each change; see its migration). However many event streams are open, a
// single loop reads the rows after its cursor and hands them to every subscriber; it runs only
// while at least one subscriber is there.
//
// A row's position is (txid, id): the writing transaction's id, then the row's own. The loop
// reads only rows of transactions below the xmin of its statement's snapshot, all of which have
// ended, so no row can appear later before a position already passed: reading in position order
// misses nothing and repeats nothing. A long-running transaction holds the stream back until it
// ends. Positions are the database's, the same on every relay.
import type { Prisma } from "@prover-boost/db";

/** A stream position: (transaction id, row id). */
export interface Position {
  txid: bigint;
  seq: bigint;
}

export type MarketEventType = "auction" | "stage" | "job" | "payout" | "penalty";

export interface MarketEvent extends Position {
  /** `<txid>-<id>`, the SSE `id:` line. */
  id: string;
  type: MarketEventType;
  block: number | null;
  /** The provers the event concerns (auction winner, lessee, payout recipient, penalized). */
  provers: string[];
  data: unknown;
}

interface Row {
  txid: bigint;
  id: bigint;
  type: MarketEventType;
  blockNumber: number | null;
  provers: string[];
  data: unknown;
}

export interface Subscriber {
  /** Events after the hub's cursor, in position order. */
  deliver(events: readonly MarketEvent[]): void;
  /** The hub could not read the log; it has dropped every subscriber. */
  fail(err: unknown): void;
}

/** The start of the log: a stream resumed from here gets every retained event. */
export const ORIGIN: Position = { txid: 0n, seq: 0n };

const BATCH = 1000;

export const positionId = (p: Position) => `${p.txid}-${p.seq}`;

/** Parses `<txid>-<id>` (the contract's eventId format). */
export function parsePosition(id: string): Position {
  const [txid, seq] = id.split("-");
  return { txid: BigInt(txid!), seq: BigInt(seq!) };
}

export const after = (a: Position, b: Position) =>
  a.txid > b.txid || (a.txid === b.txid && a.seq > b.seq);

const eventOf = (r: Row): MarketEvent => ({
  txid: r.txid,
  seq: r.id,
  id: `${r.txid}-${r.id}`,
  type: r.type,
  block: r.blockNumber,
  provers: r.provers,
  data: r.data,
});

/** Up to `limit` settled events after `from` (and not after `to`), in position order. */
export async function readEvents(
  prisma: Prisma,
  from: Position,
  limit: number,
  to?: Position,
): Promise<MarketEvent[]> {
  const upTo = to ?? { txid: BigInt(Number.MAX_SAFE_INTEGER), seq: 0n };
  const rows = await prisma.$queryRaw<Row[]>`
    SELECT "txid", "id", "type", "blockNumber", "provers", "data" FROM "MarketEvent"
    WHERE ("txid", "id") > (${from.txid}, ${from.seq})
      AND ("txid", "id") <= (${upTo.txid}, ${upTo.seq})
      AND "txid" < pg_snapshot_xmin(pg_current_snapshot())::text::bigint
    ORDER BY "txid", "id" LIMIT ${limit}`;
  return rows.map(eventOf);
}

/** The position of the last settled event (ORIGIN when the log is empty). */
async function head(prisma: Prisma): Promise<Position> {
  const rows = await prisma.$queryRaw<{ txid: bigint; id: bigint }[]>`
    SELECT "txid", "id" FROM "MarketEvent"
    WHERE "txid" < pg_snapshot_xmin(pg_current_snapshot())::text::bigint
    ORDER BY "txid" DESC, "id" DESC LIMIT 1`;
  return rows[0] ? { txid: rows[0].txid, seq: rows[0].id } : ORIGIN;
}

/**
 * A resumed stream's catch-up read: up to `limit` settled events after `from` (not after `to`),
 * or null when the log no longer holds `from` (a prune took it, and maybe events after it that
 * the reader has not had). Asked in one statement, so a prune cannot slip between the check and
 * the read.
 */
export async function readEventsAfter(
  prisma: Prisma,
  from: Position,
  limit: number,
  to: Position,
): Promise<MarketEvent[] | null> {
  if (from.txid === ORIGIN.txid && from.seq === ORIGIN.seq) {
    return readEvents(prisma, from, limit, to);
  }
  const rows = await prisma.$queryRaw<(Row & { anchored: boolean })[]>`
    WITH anchor AS (
      SELECT EXISTS (SELECT 1 FROM "MarketEvent" WHERE "txid" = ${from.txid} AND "id" = ${from.seq})
        AS anchored)
    SELECT e."txid", e."id", e."type", e."blockNumber", e."provers", e."data", anchor.anchored
    FROM anchor LEFT JOIN LATERAL (
      SELECT * FROM "MarketEvent"
      WHERE ("txid", "id") > (${from.txid}, ${from.seq})
        AND ("txid", "id") <= (${to.txid}, ${to.seq})
        AND "txid" < pg_snapshot_xmin(pg_current_snapshot())::text::bigint
      ORDER BY "txid", "id" LIMIT ${limit}) e ON anchor.anchored
    ORDER BY e."txid", e."id"`;
  if (!rows[0]?.anchored) return null;
  return rows.filter((r) => r.txid !== null).map(eventOf);
}

/** Whether the log still holds the event at `p` (so nothing after it was pruned). */
export async function retained(prisma: Prisma, p: Position): Promise<boolean> {
  const rows = await prisma.$queryRaw<unknown[]>`
    SELECT 1 FROM "MarketEvent" WHERE "txid" = ${p.txid} AND "id" = ${p.seq}`;
  return rows.length > 0;
}

export interface EventHubOptions {
  /** Longest wait between two reads when nothing announces work. */
  pollMs: number;
  /** Events older than this (by the database's clock) are pruned, as a prefix of the log; 0 = never. */
  retentionMs: number;
  /** How often the loop prunes (default: the retention window, at most a minute). */
  pruneEveryMs?: number;
  now: () => number;
  /** Resolves on a work announcement (another process changed something), after `ms`, or on abort. */
  wait: (ms: number, signal: AbortSignal) => Promise<void>;
}

export class EventHub {
  /** What the loop did, for tests and diagnostics: every database query it made is counted. */
  readonly stats = { starts: 0, polls: 0, prunes: 0, queries: 0, delivered: 0 };
  private readonly subscribers = new Set<Subscriber>();
  private cursor: Position | null = null;
  private ready: Promise<Position> | null = null;
  private abort: AbortController | null = null;
  private lastPrune = 0;

  constructor(
    private readonly prisma: Prisma,
    private readonly options: EventHubOptions,
  ) {}

  get running(): boolean {
    return this.abort !== null;
  }

  get size(): number {
    return this.subscribers.size;
  }

  /**
   * Adds a subscriber (starting the loop if it is the first) and resolves with the hub's cursor:
   * the subscriber gets every event after it, and may also get a few up to it (skip those).
   */
  async subscribe(s: Subscriber): Promise<Position> {
    this.subscribers.add(s);
    if (!this.ready) this.start();
    try {
      await this.ready;
    } catch (err) {
      this.subscribers.delete(s);
      throw err;
    }
    if (!this.subscribers.has(s)) throw new Error("the event log could not be read");
    return this.cursor!;
  }

  unsubscribe(s: Subscriber): void {
    this.subscribers.delete(s);
    if (this.subscribers.size === 0) this.stop();
  }

  close(): void {
    this.subscribers.clear();
    this.stop();
  }

  private start(): void {
    const abort = new AbortController();
    this.abort = abort;
    this.stats.starts++;
    this.stats.queries++;
    const ready = head(this.prisma).then((p) => {
      if (this.abort === abort) this.cursor = p;
      return p;
    });
    this.ready = ready;
    ready.then(
      () => this.loop(abort.signal),
      (err) => this.failAll(err, abort),
    );
  }

  private stop(): void {
    this.abort?.abort();
    this.abort = null;
    this.ready = null;
    this.cursor = null;
  }

  private failAll(err: unknown, abort: AbortController): void {
    if (this.abort !== abort) return;
    const subscribers = [...this.subscribers];
    this.subscribers.clear();
    this.stop();
    for (const s of subscribers) s.fail(err);
  }

  private async loop(signal: AbortSignal): Promise<void> {
    const { pollMs, wait } = this.options;
    try {
      while (!signal.aborted) {
        this.stats.polls++;
        this.stats.queries++;
        const events = await readEvents(this.prisma, this.cursor!, BATCH);
        if (signal.aborted) return;
        if (events.length > 0) {
          this.cursor = events[events.length - 1]!;
          this.stats.delivered += events.length;
          for (const s of [...this.subscribers]) s.deliver(events);
        }
        await this.pruneNow(signal);
        if (events.length < BATCH) await wait(pollMs, signal);
      }
    } catch (err) {
      const abort = this.abort;
      if (!signal.aborted && abort) this.failAll(err, abort);
    }
  }

  private async pruneNow(signal: AbortSignal): Promise<void> {
    const { retentionMs, now } = this.options;
    const pruneEveryMs = this.options.pruneEveryMs ?? Math.min(60_000, retentionMs);
    if (retentionMs <= 0 || signal.aborted) return;
    const t = now();
    if (t - this.lastPrune < pruneEveryMs) return;
    this.lastPrune = t;
    this.stats.prunes++;
    this.stats.queries++;
    // The newest row past the window bounds a prefix in position order, so a retained event
    // always has every later one retained too.
    await this.prisma.$executeRaw`
      DELETE FROM "MarketEvent" WHERE ("txid", "id") <= (
        SELECT "txid", "id" FROM "MarketEvent" WHERE "createdAt" <
          (extract(epoch FROM clock_timestamp()) * 1000)::bigint - ${BigInt(retentionMs)}
        ORDER BY "createdAt" DESC, "txid" DESC, "id" DESC LIMIT 1)`;
  }
}
