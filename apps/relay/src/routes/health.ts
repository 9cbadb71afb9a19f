// Health probes. /livez says the process is up and touches nothing else: an orchestrator must
// not restart a relay because Redis or Postgres is away (a restart would not bring them back).
// /readyz checks both dependencies and answers within READY_DEADLINE_MS whatever they do: a
// dependency that refuses, errs or does not reply in time is "down", and the 503 names it, so a
// load balancer takes this relay out of rotation and an operator sees why. Neither probe is
// rate-limited.
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
      if (!db || !redis) {
        const down = [db ? null : "database", redis ? null : "redis"].filter(Boolean).join(", ");
        reply.header("retry-after", "1");
        return sendError(
          reply,
          "UNAVAILABLE",
          `not ready: ${down} down (database ${db ? "up" : "down"}, redis ${redis ? "up" : "down"})`,
        );
      }
      return { status: "ready", database: "up", redis: "up" };
    },
  });
}
