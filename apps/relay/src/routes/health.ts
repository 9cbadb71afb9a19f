// Health probes. /livez says the process is up and touches nothing else: an orchestrator must
// not restart a relay because Redis or Postgres is away (a restart would not bring them back).
// /readyz checks both dependencies and answers within READY_DEADLINE_MS whatever they do: a
// dependency that refuses, errs or does not reply in time is "down", and the 503 names it, so a
// load balancer takes this relay out of rotation and an operator sees why. In chain mode
// (COLLATERAL=chain) the L1 is a third dependency: the relay is not ready while its escrow index
// is not in step with a live, unchanged L1 (the same test that refuses bids with L1_UNAVAILABLE),
// and the 503 gives the indexer's reason. Neither probe is rate-limited.
import { operations } from "@prover-boost/contract";
import type { FastifyInstance } from "fastify";
import type { RelayContext } from "../context.ts";
import { sendError } from "../errors.ts";
import { schemaOf } from "./operation.ts";

/** Each dependency check gets this long; the answer comes well within a second. */
const READY_DEADLINE_MS = 800;

/** True when `check` resolves truthy within the deadline; false on error or timeout. */
function within(check: () => Promise<unknown>, ms: number): Promise<boolean> {
  return new Promise((resolve) => {
    const timer = setTimeout(() => resolve(false), ms);
    check().then(
      (v) => {
        clearTimeout(timer);
        resolve(Boolean(v));
      },
      () => {
        clearTimeout(timer);
        resolve(false);
      },
    );
  });
}

/**
 * Chain mode: null when the escrow index is in step with the L1, else the indexer's reason.
 * Ledger mode (no index): undefined, the L1 is not a dependency.
 */
function l1Problem(ctx: RelayContext): string | null | undefined {
  if (!ctx.escrowIndex) return undefined;
  try {
    ctx.escrowIndex.assertReady();
    return null;
  } catch (err) {
    return err instanceof Error ? err.message : String(err);
  }
}

export function registerHealthRoutes(app: FastifyInstance, ctx: RelayContext) {
  const unlimited = { rateLimit: false } as const;
  const { livez, readyz } = operations;
  app.route({
    method: livez.method,
    url: livez.path,
    config: unlimited,
    schema: schemaOf(livez),
    handler: async () => ({ status: "ok" }),
  });
  app.route({
    method: readyz.method,
    url: readyz.path,
    config: unlimited,
    schema: schemaOf(readyz),
    handler: async (_req, reply) => {
      const [db, redis] = await Promise.all([
        within(() => ctx.db.sql.query("SELECT 1"), READY_DEADLINE_MS),
        within(() => ctx.fabric.ping(), READY_DEADLINE_MS),
      ]);
      const l1 = l1Problem(ctx);
      if (!db || !redis || l1) {
        const down = [db ? null : "database", redis ? null : "redis", l1 ? "l1" : null]
          .filter(Boolean)
          .join(", ");
        const states = [`database ${db ? "up" : "down"}`, `redis ${redis ? "up" : "down"}`];
        if (l1 !== undefined) states.push(`l1 ${l1 ? `down: ${l1}` : "up"}`);
        reply.header("retry-after", "1");
        return sendError(reply, "UNAVAILABLE", `not ready: ${down} down (${states.join(", ")})`);
      }
      return ctx.escrowIndex
        ? { status: "ready", database: "up", redis: "up", l1: "up" }
        : { status: "ready", database: "up", redis: "up" };
    },
  });
}
