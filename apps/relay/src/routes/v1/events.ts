// GET /v1/blocks/{n}/events: server-sent events, one per stage change and per job state change.
// Changes are read from Postgres (the source of truth, whichever relay or aggregator process
// made them) and pushed as soon as a readiness announcement or a short poll reveals them.
//
// A stream is long-lived, so it is bounded and kept honest: a comment line every
// SSE_KEEPALIVE_MS keeps idle streams open through proxies (and shows the client the relay is
// there); a database error ends the stream with an `error` event carrying the usual error body
// and a `retry:` hint, instead of leaving the client on a silent, dead stream; and each relay
// process holds at most SSE_STREAMS_PER_IP streams per client IP (over it: 429 RATE_LIMITED) and
// SSE_STREAMS_MAX in all (over it: 503 UNAVAILABLE), since every stream polls the database.
import { operations } from "@prover-boost/contract";
import { DomainError, stages as stageOrder } from "@prover-boost/core";
import type { FastifyInstance } from "fastify";
import type { ZodTypeProvider } from "fastify-type-provider-zod";
import type { RelayContext } from "../../context.ts";
import { errorBody, RETRY_AFTER_SECONDS, unavailableDependency } from "../../errors.ts";
import { blockExists, blockProgress } from "../../services/views.ts";
import { schemaOf } from "../operation.ts";

const POLL_MS = 500;

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

export function registerEventRoutes(app: FastifyInstance, ctx: RelayContext) {
  const r = app.withTypeProvider<ZodTypeProvider>();
  const open = new StreamCounts();
  const { streamsPerIp: perIp, streamsMax: max, keepaliveMs } = ctx.settings.events;
  const { blockEvents } = operations;
  r.route({
    method: blockEvents.method,
    url: blockEvents.path,
    schema: schemaOf(blockEvents),
    handler: async (req, reply) => {
      const number = req.params.blockNumber;
      if (perIp > 0 && open.of(req.ip) >= perIp) {
        reply.header("retry-after", String(RETRY_AFTER_SECONDS));
        throw new DomainError("RATE_LIMITED", `at most ${perIp} event streams per client`);
      }
      if (max > 0 && open.total >= max) {
        throw new DomainError("UNAVAILABLE", "too many event streams open; retry shortly");
      }
      if (!(await blockExists(ctx, number)))
        throw new DomainError("BLOCK_NOT_FOUND", `no block ${number}`);
      // Counted from here (no await until the stream is set up) until it ends.
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
      const abort = new AbortController();
      req.raw.on("close", () => abort.abort());
      const keepalive = setInterval(() => res.write(": keepalive\n\n"), keepaliveMs);
      const send = (event: string, data: unknown) =>
        res.write(`event: ${event}\ndata: ${JSON.stringify(data)}\n\n`);
      try {
        await stream(ctx, number, send, abort.signal);
      } catch (err) {
        const down = unavailableDependency(err);
        if (down) req.log.warn({ err: { message: (err as Error).message } }, "event stream ended");
        else req.log.error({ err }, "event stream failed");
        // The client may reconnect (EventSource does so by itself) after the hinted delay.
        res.write(`retry: ${RETRY_AFTER_SECONDS * 1000}\n`);
        send(
          "error",
          down
            ? errorBody("UNAVAILABLE", `the ${down} is unavailable; reconnect shortly`, req.id)
            : errorBody("INTERNAL", "internal error", req.id),
        );
      } finally {
        clearInterval(keepalive);
        open.remove(ip);
        res.end();
      }
    },
  });
}

/** Sends the block's stage and job changes until it is paid or the client goes away. */
async function stream(
  ctx: RelayContext,
  number: number,
  send: (event: string, data: unknown) => void,
  signal: AbortSignal,
): Promise<void> {
  const stagesSeen = new Set<string>();
  const jobState = new Map<string, string>();
  while (!signal.aborted) {
    const { stage, stages, jobs } = await blockProgress(ctx, number);
    // By time; stages stamped in the same millisecond by lifecycle order.
    const rank = (stage: string) => stageOrder.indexOf(stage as (typeof stageOrder)[number]);
    const ordered = Object.entries(stages).sort((a, b) => a[1] - b[1] || rank(a[0]) - rank(b[0]));
    for (const [reached, at] of ordered) {
      if (stagesSeen.has(reached)) continue;
      stagesSeen.add(reached);
      send("stage", { block: number, stage: reached, at });
    }
    for (const j of jobs) {
      if (jobState.get(j.id) === j.status) continue;
      jobState.set(j.id, j.status);
      send("job", { block: number, id: j.id, type: j.type, status: j.status, worker: j.workerId });
    }
    if (stage === "paid") return;
    await ctx.fabric.waitForWork(POLL_MS, signal);
  }
}
