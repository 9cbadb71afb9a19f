// GET /v1/blocks/{n}/events: server-sent events, one per stage change and per job state change.
// Changes are read from Postgres (the source of truth, whichever relay or aggregator process
// made them) and pushed as soon as a readiness announcement or a short poll reveals them.
import { DomainError, stages as stageOrder } from "@prover-boost/core";
import type { FastifyInstance } from "fastify";
import type { ZodTypeProvider } from "fastify-type-provider-zod";
import type { RelayContext } from "../context.ts";
import { blockParam } from "../schemas.ts";

const POLL_MS = 500;

export function registerEventRoutes(app: FastifyInstance, ctx: RelayContext) {
  const r = app.withTypeProvider<ZodTypeProvider>();
  r.get(
    "/v1/blocks/:blockNumber/events",
    {
      schema: {
        tags: ["public"],
        summary: "Server-sent events of a block's stages and jobs",
        params: blockParam,
      },
    },
    async (req, reply) => {
      const number = req.params.blockNumber;
      const exists = await ctx.prisma.block.findUnique({
        where: { number },
        select: { number: true },
      });
      if (!exists) throw new DomainError("BLOCK_NOT_FOUND", `no block ${number}`);
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
      const stagesSeen = new Set<string>();
      const jobState = new Map<string, string>();
      const send = (event: string, data: unknown) =>
        res.write(`event: ${event}\ndata: ${JSON.stringify(data)}\n\n`);
      while (!abort.signal.aborted) {
        const block = await ctx.prisma.block.findUnique({ where: { number } });
        const stages = (block?.stages ?? {}) as Record<string, number>;
        // By time; stages stamped in the same millisecond by lifecycle order.
        const rank = (stage: string) => stageOrder.indexOf(stage as (typeof stageOrder)[number]);
        const ordered = Object.entries(stages).sort(
          (a, b) => a[1] - b[1] || rank(a[0]) - rank(b[0]),
        );
        for (const [stage, at] of ordered) {
          if (stagesSeen.has(stage)) continue;
          stagesSeen.add(stage);
          send("stage", { block: number, stage, at });
        }
        const jobs = await ctx.prisma.proofJob.findMany({
          where: { blockNumber: number },
          select: { id: true, status: true, workerId: true, type: true },
        });
        for (const j of jobs) {
          if (jobState.get(j.id) === j.status) continue;
          jobState.set(j.id, j.status);
          send("job", {
            block: number,
            id: j.id,
            type: j.type,
            status: j.status,
            worker: j.workerId,
          });
        }
        if (block?.stage === "paid") break;
        await ctx.fabric.waitForWork(POLL_MS, abort.signal);
      }
      res.end();
    },
  );
}
