// Server-sent event streams:
//   GET /v1/events                  every auction, stage, job, payout and penalty event, each with
//                                   an `id:`; resumable by Last-Event-ID; filters ?block= ?prover=
//   GET /v1/blocks/{n}/events       one block's stages and jobs, ending after `paid` or `expired`
//
// Both read the market's event log through the relay's one EventHub (services/event-hub.ts): a
// single loop per relay process reads the log and fans out to every stream, so a stream costs no
// database query beyond its start (a resumed stream's catch-up, a block stream's snapshot).
//
// A stream is long-lived, so it is bounded and kept honest: /v1/events starts with a `retry:` hint; a
// comment line every SSE_KEEPALIVE_MS keeps idle streams open through proxies; a client that
// leaves more than SSE_MAX_BUFFER_BYTES unread is dropped (services/sse.ts); a database error
// ends the stream with an `error` event carrying the usual error body, instead of leaving the
// client on a silent, dead stream; and each relay process holds at most SSE_STREAMS_PER_IP
// streams per client IP (over it: 429 RATE_LIMITED) and SSE_STREAMS_MAX in all (over it: 503
// UNAVAILABLE), both routes together.
import { eventId, operations } from "@prover-boost/contract";
import { DomainError, isFinalStage, type Stage, stages as stageOrder } from "@prover-boost/core";
import type { FastifyInstance, FastifyReply, FastifyRequest } from "fastify";
import type { ZodTypeProvider } from "fastify-type-provider-zod";
import type { RelayContext } from "../../context.ts";
import { errorBody, RETRY_AFTER_SECONDS, unavailableDependency } from "../../errors.ts";
import {
  after,
  type MarketEvent,
  ORIGIN,
  type Position,
  parsePosition,
  positionId,
  readEventsAfter,
  retained,
  type Subscriber,
} from "../../services/event-hub.ts";
import { SseWriter } from "../../services/sse.ts";
import { blockExists, blockSnapshot, visibleIn } from "../../services/views.ts";
import { schemaOf } from "../operation.ts";

const CATCH_UP_BATCH = 1000;

/** Open streams, in total and per client IP (this process). */
class StreamCounts {
  total = 0;
  private readonly byIp = new Map<string, number>();

  of(ip: string): number {
    return this.byIp.get(ip) ?? 0;
  }

  add(ip: string): void {
    this.total++;
    this.byIp.set(ip, this.of(ip) + 1);
  }

  remove(ip: string): void {
    this.total--;
    const n = this.of(ip) - 1;
    if (n > 0) this.byIp.set(ip, n);
    else this.byIp.delete(ip);
  }
}

/** Events from the hub, queued for one stream until it writes them. */
class Inbox implements Subscriber {
  private queue: MarketEvent[] = [];
  private wake: (() => void) | null = null;
  private failure: { err: unknown } | null = null;

  constructor(private readonly accepts: (e: MarketEvent) => boolean) {}

  deliver(events: readonly MarketEvent[]): void {
    for (const e of events) if (this.accepts(e)) this.queue.push(e);
    this.wake?.();
  }

  fail(err: unknown): void {
    this.failure = { err };
    this.wake?.();
  }

  /** The queued events, waiting for some if none (empty when aborted); throws the hub's failure. */
  async take(signal: AbortSignal): Promise<MarketEvent[]> {
    if (this.queue.length === 0 && !this.failure && !signal.aborted) {
      await new Promise<void>((resolve) => {
        this.wake = resolve;
        signal.addEventListener("abort", this.wake, { once: true });
      });
      if (this.wake) signal.removeEventListener("abort", this.wake);
      this.wake = null;
    }
    if (this.failure) throw this.failure.err;
    return this.queue.splice(0);
  }
}

export function registerEventRoutes(app: FastifyInstance, ctx: RelayContext) {
  const r = app.withTypeProvider<ZodTypeProvider>();
  const open = new StreamCounts();
  const { streamsPerIp: perIp, streamsMax: max, keepaliveMs, maxBufferBytes } = ctx.settings.events;

  /** Refuses a stream over the caps (before anything else is done for it). */
  const admit = (req: FastifyRequest, reply: FastifyReply) => {
    if (perIp > 0 && open.of(req.ip) >= perIp) {
      reply.header("retry-after", String(RETRY_AFTER_SECONDS));
      throw new DomainError("RATE_LIMITED", `at most ${perIp} event streams per client`);
    }
    if (max > 0 && open.total >= max) {
      throw new DomainError("UNAVAILABLE", "too many event streams open; retry shortly");
    }
  };

  /** Opens the stream (counted until it ends), runs `body` on it, and ends it. */
  const run = async (
    req: FastifyRequest,
    reply: FastifyReply,
    body: (sse: SseWriter, signal: AbortSignal) => Promise<void>,
    retryFirst: boolean,
  ) => {
    // Counted from here (no await since admit) until it ends.
    const ip = req.ip;
    open.add(ip);
    reply.hijack();
    const res = reply.raw;
    res.writeHead(200, {
      "content-type": "text/event-stream",
      "cache-control": "no-cache",
      connection: "keep-alive",
      "x-request-id": String(req.id),
    });
    const sse = new SseWriter(res, maxBufferBytes);
    const abort = new AbortController();
    req.raw.on("close", () => abort.abort());
    res.on("close", () => abort.abort());
    const keepalive = setInterval(() => {
      if (!sse.comment("keepalive")) abort.abort();
    }, keepaliveMs);
    try {
      if (retryFirst) sse.retry(RETRY_AFTER_SECONDS * 1000);
      await body(sse, abort.signal);
    } catch (err) {
      const down = unavailableDependency(err);
      if (down) req.log.warn({ err: { message: (err as Error).message } }, "event stream ended");
      else req.log.error({ err }, "event stream failed");
      // The client may reconnect (EventSource does so by itself) after the hinted delay.
      sse.retry(RETRY_AFTER_SECONDS * 1000);
      sse.event(
        "error",
        down
          ? errorBody("UNAVAILABLE", `the ${down} is unavailable; reconnect shortly`, req.id)
          : errorBody("INTERNAL", "internal error", req.id),
      );
    } finally {
      clearInterval(keepalive);
      open.remove(ip);
      if (sse.dropped) req.log.info("event stream client dropped: too much unread output");
      res.end();
    }
  };

  const { marketEvents, blockEvents } = operations;

  r.route({
    method: marketEvents.method,
    url: marketEvents.path,
    schema: schemaOf(marketEvents),
    handler: async (req, reply) => {
      admit(req, reply);
      const header = req.headers["last-event-id"];
      const resumeText =
        typeof header === "string" && header !== "" ? header : req.query.lastEventId;
      let resumeFrom: Position | undefined;
      if (resumeText !== undefined) {
        const parsed = eventId.safeParse(resumeText);
        if (!parsed.success) {
          throw new DomainError("VALIDATION_FAILED", "Last-Event-ID: an event id <txid>-<id>");
        }
        resumeFrom = parsePosition(parsed.data);
      }
      const { block, prover } = req.query;
      const accepts = (e: MarketEvent) =>
        (block === undefined || e.block === block) &&
        (prover === undefined || e.provers.includes(prover));
      await run(
        req,
        reply,
        (sse, signal) => followLog(ctx, sse, signal, accepts, resumeFrom),
        true,
      );
    },
  });

  r.route({
    method: blockEvents.method,
    url: blockEvents.path,
    schema: schemaOf(blockEvents),
    handler: async (req, reply) => {
      const number = req.params.blockNumber;
      admit(req, reply); // before the query, so a client over its cap costs none
      if (!(await blockExists(ctx, number)))
        throw new DomainError("BLOCK_NOT_FOUND", `no block ${number}`);
      admit(req, reply); // again: other streams may have opened meanwhile
      // Its first line stays its first event, as before /v1/events existed.
      await run(req, reply, (sse, signal) => followBlock(ctx, number, sse, signal), false);
    },
  });
}

/** GET /v1/events: a resumed stream's missed events, then live ones, each once, in log order. */
async function followLog(
  ctx: RelayContext,
  sse: SseWriter,
  signal: AbortSignal,
  accepts: (e: MarketEvent) => boolean,
  resumeFrom: Position | undefined,
): Promise<void> {
  const inbox = new Inbox(accepts);
  const head = await ctx.events.subscribe(inbox);
  try {
    let last = head;
    if (resumeFrom) {
      const known =
        (resumeFrom.txid === ORIGIN.txid && resumeFrom.seq === ORIGIN.seq) ||
        (await retained(ctx.prisma, resumeFrom));
      if (known) {
        // What the client missed up to the hub's cursor; the hub sends what comes after it.
        // Each batch is read only while the log still holds the last event sent: a prune
        // during the catch-up (any relay's) ends it with a reset, never with a silent gap.
        let from = resumeFrom;
        while (after(head, from) && sse.open && !signal.aborted) {
          const events = await readEventsAfter(ctx.prisma, from, CATCH_UP_BATCH, head);
          if (events === null) {
            sse.event("reset", { head: positionId(head) }, positionId(head));
            break;
          }
          if (events.length === 0) break;
          for (const e of events) if (accepts(e)) sse.event(e.type, e.data, e.id);
          from = events[events.length - 1]!;
        }
        if (after(resumeFrom, head)) last = resumeFrom;
      } else {
        // Pruned (or never issued): the client must reread the state it keeps.
        sse.event("reset", { head: positionId(head) }, positionId(head));
      }
    }
    while (sse.open && !signal.aborted) {
      for (const e of await inbox.take(signal)) {
        if (!after(e, last)) continue;
        last = e;
        if (!sse.event(e.type, e.data, e.id)) return;
      }
    }
  } finally {
    ctx.events.unsubscribe(inbox);
  }
}

/**
 * GET /v1/blocks/{n}/events: the block's state now, then its changes until its final stage (paid,
 * or expired in open proving).
 */
async function followBlock(
  ctx: RelayContext,
  number: number,
  sse: SseWriter,
  signal: AbortSignal,
): Promise<void> {
  const inbox = new Inbox((e) => e.block === number && (e.type === "stage" || e.type === "job"));
  await ctx.events.subscribe(inbox);
  try {
    const stagesSeen = new Set<string>();
    const jobState = new Map<string, string>();
    const sendStage = (stage: string, at: number) => {
      if (stagesSeen.has(stage)) return;
      stagesSeen.add(stage);
      sse.event("stage", { block: number, stage, at });
    };
    const sendJob = (j: { id: string; type: string; status: string; worker: string | null }) => {
      if (jobState.get(j.id) === j.status) return;
      jobState.set(j.id, j.status);
      sse.event("job", {
        block: number,
        id: j.id,
        type: j.type,
        status: j.status,
        worker: j.worker,
      });
    };
    // Subscribed first, so every change the snapshot does not show comes from the hub after it.
    const snap = await blockSnapshot(ctx, number);
    // By time; stages stamped in the same millisecond by lifecycle order.
    const rank = (stage: string) => stageOrder.indexOf(stage as (typeof stageOrder)[number]);
    const ordered = Object.entries(snap.stages).sort(
      (a, b) => a[1] - b[1] || rank(a[0]) - rank(b[0]),
    );
    for (const [stage, at] of ordered) sendStage(stage, at);
    for (const j of snap.jobs) sendJob({ ...j, worker: j.workerId });
    if (isFinalStage(snap.stage as Stage)) return;
    while (sse.open && !signal.aborted) {
      for (const e of await inbox.take(signal)) {
        if (visibleIn(snap.snapshot, e.txid)) continue;
        if (e.type === "stage") {
          const d = e.data as { stage: string; at: number };
          sendStage(d.stage, d.at);
          if (isFinalStage(d.stage as Stage)) return;
        } else {
          sendJob(e.data as { id: string; type: string; status: string; worker: string | null });
        }
      }
    }
  } finally {
    ctx.events.unsubscribe(inbox);
  }
}
