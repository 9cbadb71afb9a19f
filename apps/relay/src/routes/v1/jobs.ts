// The worker gateway: leasing jobs, heartbeats, results and fails, authenticated by the session
// token a worker got at sign-in.
import { operations } from "@prover-boost/contract";
import type { FastifyInstance } from "fastify";
import type { ZodTypeProvider } from "fastify-type-provider-zod";
import { sessionOf } from "../../auth.ts";
import type { RelayContext } from "../../context.ts";
import {
  failJob,
  giveBackUnheard,
  heartbeat,
  leaseJob,
  releaseJob,
  submitResult,
} from "../../services/gateway.ts";
import { schemaOf } from "../operation.ts";

export function registerJobRoutes(app: FastifyInstance, ctx: RelayContext) {
  const r = app.withTypeProvider<ZodTypeProvider>();
  // Every route here is authenticated by its session token before validation (see auth.ts).
  const {
    leaseJob: lease,
    heartbeat: heartbeatOp,
    submitResult: resultOp,
    failJob: failOp,
  } = operations;

  r.route({
    method: lease.method,
    url: lease.path,
    schema: schemaOf(lease),
    handler: async (req, reply) => {
      // Listen before any await: a client that leaves while the lease is sought must be seen.
      // The response's "close" before "finish" means the connection went away (the request's
      // own "close" fires once its body is read, so it says nothing about the client).
      // "finish" (the answer was handed to the socket) is tracked by its event rather than read
      // from writableFinished, which an injected (in-process) response never sets.
      const abort = new AbortController();
      let finished = false;
      reply.raw.once("finish", () => {
        finished = true;
      });
      const gone = () => {
        if (!finished) abort.abort();
      };
      reply.raw.on("close", gone);
      if (req.raw.socket?.destroyed) abort.abort();
      const session = sessionOf(req);
      const job = await leaseJob(ctx, session, req.body.waitMs, abort.signal);
      if (!job) return reply.status(204).send();
      // A lease is committed only to a client that is still there. Gone already, or the answer
      // cannot be written: the job goes straight back, with no lapse and no penalty.
      const giveBack = () => {
        giveBackUnheard(ctx, session, job.id).catch((err) =>
          req.log.warn({ err, jobId: job.id }, "giving back an unheard lease failed"),
        );
      };
      if (abort.signal.aborted || req.raw.socket?.destroyed || reply.raw.destroyed) {
        giveBack();
        return reply.hijack();
      }
      reply.raw.off("close", gone);
      reply.raw.on("close", () => {
        if (!finished) giveBack();
      });
      return { job };
    },
  });
  r.route({
    method: heartbeatOp.method,
    url: heartbeatOp.path,
    schema: schemaOf(heartbeatOp),
    handler: async (req) => heartbeat(ctx, sessionOf(req), req.params.id),
  });
  r.route({
    method: resultOp.method,
    url: resultOp.path,
    schema: schemaOf(resultOp),
    handler: async (req) =>
      submitResult(ctx, sessionOf(req), req.params.id, req.body.proof, req.body.publicInputs),
  });
  r.route({
    method: failOp.method,
    url: failOp.path,
    schema: schemaOf(failOp),
    handler: async (req) =>
      req.body.shutdown
        ? releaseJob(ctx, sessionOf(req), req.params.id)
        : failJob(ctx, sessionOf(req), req.params.id, req.body.reason, req.body.retryable),
  });
}
