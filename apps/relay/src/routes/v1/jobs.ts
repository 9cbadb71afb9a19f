// The worker gateway: leasing jobs, heartbeats, results and fails, authenticated by the session
// token a worker got at sign-in.
import { operations } from "@prover-boost/contract";
import type { WorkerSession } from "@prover-boost/db";
import type { FastifyInstance, FastifyReply, FastifyRequest } from "fastify";
import type { ZodTypeProvider } from "fastify-type-provider-zod";
import { sessionOf } from "../../auth.ts";
import type { RelayContext } from "../../context.ts";
import { sendError } from "../../errors.ts";
import {
  failJob,
  giveBackUnheard,
  heartbeat,
  leaseJob,
  releaseJob,
  submitResult,
} from "../../services/gateway.ts";
import type { Arrival } from "../../services/load.ts";
import { sessionExpired } from "../../services/sessions.ts";
import { schemaOf } from "../operation.ts";

/** Seconds a shed lease request is asked to wait. */
const OVERLOAD_RETRY_AFTER_SECONDS = 1;

/**
 * Whether to refuse one new lease at `over` times OVERLOAD_LAG_MS behind: half of them just over
 * the limit, up to 95% at twice it, so a relay behind for reasons not its own (a noisy host)
 * still hands out work. A forced overload (tests, drills) refuses every one.
 */
function shouldShed(ctx: RelayContext, over: number): boolean {
  if (ctx.load.lag.isForced()) return true;
  return Math.random() < Math.min(0.95, over / 2);
}

const arrivals = new WeakMap<FastifyRequest, Arrival>();
/** Connections that have carried a request: a later request on one did not wait to be accepted. */
const seenSockets = new WeakSet<object>();
const arrivalOf = (req: FastifyRequest) => arrivals.get(req);

/**
 * Stamps lease holders' requests (heartbeat, result, fail: routes with `config.arrival`) as the
 * relay reads them, ahead of every other hook (services/load.ts); each stays in flight until its
 * answer is written or its connection closes. The first request on a connection may also have
 * waited for the connection to be accepted.
 */
export function registerArrivalStamps(app: FastifyInstance, ctx: RelayContext) {
  app.addHook("onRequest", (req, reply, done) => {
    const socket = req.raw.socket;
    const fresh = !seenSockets.has(socket);
    if (fresh) seenSockets.add(socket);
    if ((req.routeOptions.config as { arrival?: boolean } | undefined)?.arrival) {
      const a = ctx.load.arrivals.stamp(fresh);
      arrivals.set(req, a);
      reply.raw.once("close", () => ctx.load.arrivals.done(a));
    }
    done();
  });
}

/** How far behind the relay is when it is to refuse this new lease (shed), else null. */
function sheddingLag(ctx: RelayContext): number | null {
  const limit = ctx.settings.overloadLagMs;
  const lag = ctx.load.lag.behindMs();
  return limit > 0 && lag > limit && shouldShed(ctx, lag / limit) ? lag : null;
}

/** Whether the client of a request that may lease a job is still there to hear of it. */
interface ClientWatch {
  /** Aborted once the client has gone. */
  signal: AbortSignal;
  /**
   * Commits a lease on `jobId` to the answer: false (and the job given straight back, with no
   * lapse and no penalty) if the client has gone or the answer cannot be written; given back
   * later if the connection closes before the answer is handed to it.
   */
  commit(ctx: RelayContext, session: WorkerSession, jobId: string): boolean;
}

/** Gives a job leased for an answer its worker will not hear straight back (no lapse, no penalty). */
function giveBack(ctx: RelayContext, session: WorkerSession, jobId: string, req: FastifyRequest) {
  giveBackUnheard(ctx, session, jobId).catch((err) =>
    req.log.warn({ err, jobId }, "giving back an unheard lease failed"),
  );
}

function watchClient(req: FastifyRequest, reply: FastifyReply): ClientWatch {
  // Listen before any await: a client that leaves while the lease is sought must be seen.
  // The response's "close" before "finish" means the connection went away (the request's own
  // "close" fires once its body is read, so it says nothing about the client). "finish" (the
  // answer was handed to the socket) is tracked by its event rather than read from
  // writableFinished, which an injected (in-process) response never sets.
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
  return {
    signal: abort.signal,
    commit(ctx, session, jobId) {
      if (abort.signal.aborted || req.raw.socket?.destroyed || reply.raw.destroyed) {
        giveBack(ctx, session, jobId, req);
        return false;
      }
      reply.raw.off("close", gone);
      reply.raw.on("close", () => {
        if (!finished) giveBack(ctx, session, jobId, req);
      });
      return true;
    },
  };
}

/**
 * The job a result's answer carries when asked (`next: true`): leased as a lease request with
 * no wait would lease it, once the proof was accepted and the release of its capacity slot
 * sent (Redis runs the release first). A relay shedding new leases, or any error of the lease
 * (a slot not yet free among them), gives null: the result's own answer stands, and the worker
 * leases as usual (where a refusal is said with its code).
 */
async function nextJob(
  ctx: RelayContext,
  session: WorkerSession,
  client: ClientWatch,
  req: FastifyRequest,
) {
  if (sheddingLag(ctx) !== null) return null;
  try {
    const job = await leaseJob(ctx, session, 0, client.signal);
    if (!job) return null;
    return client.commit(ctx, session, job.id) ? job : null;
  } catch (err) {
    req.log.debug({ err }, "no next job with the result");
    return null;
  }
}

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
    // Load shedding, before authentication or any other work: a relay that has fallen behind
    // refuses new leases (503 UNAVAILABLE, Retry-After) rather than lapse the leases it holds.
    onRequest: async (_req, reply) => {
      const lag = sheddingLag(ctx);
      if (lag !== null) {
        reply.header("retry-after", String(OVERLOAD_RETRY_AFTER_SECONDS));
        return sendError(
          reply,
          "UNAVAILABLE",
          `the relay is overloaded (event loop ${Math.round(lag)} ms behind); no new lease, retry shortly`,
        );
      }
    },
    handler: async (req, reply) => {
      const client = watchClient(req, reply);
      const session = sessionOf(req);
      const job = await leaseJob(ctx, session, req.body.waitMs, client.signal);
      if (!job) return reply.status(204).send();
      if (!client.commit(ctx, session, job.id)) return reply.hijack();
      return { job };
    },
  });
  r.route({
    method: heartbeatOp.method,
    url: heartbeatOp.path,
    schema: schemaOf(heartbeatOp),
    config: { arrival: true },
    handler: async (req) => heartbeat(ctx, sessionOf(req), req.params.id, arrivalOf(req)),
  });
  r.route({
    method: resultOp.method,
    url: resultOp.path,
    schema: schemaOf(resultOp),
    config: { arrival: true },
    handler: async (req, reply) => {
      const session = sessionOf(req);
      // An expired session may still hand in the result of a lease it holds, but takes no new one.
      const client =
        req.body.next && !sessionExpired(ctx, session) ? watchClient(req, reply) : null;
      // The next job is sought as soon as the proof is accepted, beside the proof's own mark.
      let next: ReturnType<typeof nextJob> | undefined;
      const seekNext = client
        ? () => {
            next ??= nextJob(ctx, session, client, req);
          }
        : undefined;
      try {
        const answer = await submitResult(
          ctx,
          session,
          req.params.id,
          req.body.proof,
          req.body.publicInputs,
          arrivalOf(req),
          seekNext,
        );
        if (!client) return answer;
        // Sought once the proof was accepted (always, before an answer without error).
        return { ...answer, next: next ? await next : null };
      } catch (err) {
        // The answer is an error (after the proof was accepted, its lease record's drop or its
        // mark failed): a next job leased meanwhile would never be heard of, so it goes straight
        // back, as if unheard.
        void next?.then((job) => {
          if (job) giveBack(ctx, session, job.id, req);
        });
        throw err;
      }
    },
  });
  r.route({
    method: failOp.method,
    url: failOp.path,
    schema: schemaOf(failOp),
    config: { arrival: true },
    handler: async (req) =>
      req.body.shutdown
        ? releaseJob(ctx, sessionOf(req), req.params.id)
        : failJob(
            ctx,
            sessionOf(req),
            req.params.id,
            req.body.reason,
            req.body.retryable,
            arrivalOf(req),
          ),
  });
}
