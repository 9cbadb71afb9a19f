import { jobTypes } from "@prover-boost/core";
import type { FastifyInstance, FastifyRequest } from "fastify";
import type { ZodTypeProvider } from "fastify-type-provider-zod";
import { z } from "zod";
import type { RelayContext } from "../context.ts";
import { address, hexProof, signature, smallInt } from "../schemas.ts";
import {
  failJob,
  giveBackUnheard,
  heartbeat,
  leaseJob,
  submitResult,
} from "../services/gateway.ts";
import { createSession, SessionCache } from "../services/sessions.ts";

export const sessionBody = z.object({
  login: z.object({
    operator: address,
    workerId: z.string().regex(/^[A-Za-z0-9._-]{1,64}$/, "1-64 characters of A-Z a-z 0-9 . _ -"),
    issuedAt: smallInt,
    capacity: z.number().int().min(1).max(256),
    jobTypes: z
      .array(z.enum(jobTypes as [string, ...string[]]))
      .min(1)
      .max(jobTypes.length),
    hardware: z
      .object({
        cores: z.number().int().min(0).max(100_000).optional(),
        memoryMb: z.number().int().min(0).max(1e9).optional(),
        gpus: z.number().int().min(0).max(1024).optional(),
      })
      .catchall(z.union([z.string().max(200), z.number(), z.boolean()]))
      .default({}),
  }),
  signature,
});

const jobParam = z.object({ id: z.string().max(64) });

export function registerWorkerRoutes(app: FastifyInstance, ctx: RelayContext) {
  const r = app.withTypeProvider<ZodTypeProvider>();
  const sessions = new SessionCache();
  const auth = (req: FastifyRequest) => sessions.authenticate(ctx, req.headers.authorization);

  r.post(
    "/v1/workers/sessions",
    {
      schema: {
        tags: ["worker"],
        summary: "Sign a worker in with an operator-signed WorkerLogin",
        body: sessionBody,
      },
    },
    async (req, reply) => {
      const { login, signature: sig } = req.body;
      const session = await createSession(ctx, login as Parameters<typeof createSession>[1], sig);
      return reply.status(201).send(session);
    },
  );
  r.post(
    "/v1/jobs/lease",
    {
      schema: {
        tags: ["worker"],
        summary: "Lease a job (long poll up to waitMs)",
        body: z
          .object({ waitMs: z.number().int().min(0).max(30_000).default(0) })
          .default({ waitMs: 0 }),
      },
    },
    async (req, reply) => {
      // Listen before any await: a client that leaves while authentication runs must be seen.
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
      const session = await auth(req);
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
  );
  r.post(
    "/v1/jobs/:id/heartbeat",
    { schema: { tags: ["worker"], summary: "Extend a lease", params: jobParam } },
    async (req) => heartbeat(ctx, await auth(req), req.params.id),
  );
  r.post(
    "/v1/jobs/:id/result",
    {
      schema: {
        tags: ["worker"],
        summary: "Hand back a proof",
        params: jobParam,
        body: z.object({ proof: hexProof }),
      },
    },
    async (req) => submitResult(ctx, await auth(req), req.params.id, req.body.proof),
  );
  r.post(
    "/v1/jobs/:id/fail",
    {
      schema: {
        tags: ["worker"],
        summary: "Give a job back (retryable) or fail it",
        description:
          "Retryable: the job goes back to the queue and the answer says how many more times " +
          "this worker may hand it back (`retriesLeft`); at 0 it is not offered this job again " +
          "(MAX_RETRYABLE_FAILS_PER_WORKER; all of an operator's worker ids together: " +
          "MAX_JOB_FAILS_PER_OPERATOR). At the job's MAX_JOB_ATTEMPTS failed attempts (by " +
          "anyone) it is failed instead (`status: failed`). Not retryable: the job is failed and " +
          "this worker is not offered it again. A job every eligible worker is barred from waits " +
          "for a new worker or for the proof deadline (open proving).",
        params: jobParam,
        body: z.object({ reason: z.string().max(500), retryable: z.boolean() }),
      },
    },
    async (req) =>
      failJob(ctx, await auth(req), req.params.id, req.body.reason, req.body.retryable),
  );
}
