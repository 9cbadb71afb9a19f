// Authentication before anything else looks at the request. Every route whose contract operation
// declares `auth` gets an onRequest hook, registered once here for all of them, that checks the
// bearer token before the body is read, parsed or validated: an unauthenticated call is a 401
// whatever its body, so nobody learns how the relay validates input without a credential.
import { type Operation, operations } from "@prover-boost/contract";
import type { WorkerSession } from "@prover-boost/db";
import type { FastifyInstance, FastifyRequest, onRequestHookHandler } from "fastify";
import type { RelayContext } from "./context.ts";
import { requireAdmin } from "./services/admin.ts";
import { SessionCache } from "./services/sessions.ts";

declare module "fastify" {
  interface FastifyRequest {
    /** The caller's worker session, set on routes whose operation has `auth: "worker"`. */
    workerSession: WorkerSession | null;
  }
}

const operationById = new Map<string, Operation>(
  Object.values(operations).map((o: Operation) => [o.operationId, o]),
);

/**
 * Operations on a lease the caller already holds (the relay checks the lease is the session's):
 * a session past its expiry may still call them for a while, so that the job in flight at expiry
 * is not lost. Taking a new lease needs a live session.
 */
const HELD_LEASE_OPERATIONS: ReadonlySet<string> = new Set([
  operations.heartbeat.operationId,
  operations.submitResult.operationId,
  operations.failJob.operationId,
  // A sign-out gives back the leases the session still holds, so it is one of these calls.
  operations.endSession.operationId,
]);

/** The worker session of an authenticated route's request (set by the onRequest hook). */
export function sessionOf(req: FastifyRequest): WorkerSession {
  if (!req.workerSession) throw new Error(`${req.routeOptions.url} is not a worker route`);
  return req.workerSession;
}

/** Must run before the routes are registered: it hooks every route added after it. */
export function registerAuthentication(app: FastifyInstance, ctx: RelayContext) {
  const sessions = new SessionCache();
  app.decorateRequest("workerSession", null);
  const worker: onRequestHookHandler = async (req) => {
    req.workerSession = await sessions.authenticate(ctx, req.headers.authorization);
  };
  // Calls on a lease the session already holds: served for a while after the session expired.
  const workerHeldLease: onRequestHookHandler = async (req) => {
    req.workerSession = await sessions.authenticate(ctx, req.headers.authorization, {
      heldLeases: true,
    });
  };
  const admin: onRequestHookHandler = async (req) => {
    requireAdmin(ctx, req.headers.authorization);
  };
  app.addHook("onRoute", (route) => {
    const id = (route.schema as { operationId?: string } | undefined)?.operationId;
    const auth = id ? operationById.get(id)?.auth : undefined;
    if (!auth) return;
    // After the route's own onRequest hooks (the per-IP rate limit), so a flood of bad
    // credentials is limited before it costs a session lookup.
    const own = route.onRequest ? [route.onRequest].flat() : [];
    const hook =
      auth === "admin" ? admin : HELD_LEASE_OPERATIONS.has(id!) ? workerHeldLease : worker;
    route.onRequest = [...own, hook];
  });
}
