import type { FastifyInstance } from "fastify";
import type { RelayContext } from "../context.ts";
import { sendError } from "../errors.ts";

export function registerHealthRoutes(app: FastifyInstance, ctx: RelayContext) {
  app.get("/livez", { schema: { tags: ["ops"], summary: "Process is up" } }, async () => ({
    status: "ok",
  }));
  app.get(
    "/readyz",
    { schema: { tags: ["ops"], summary: "Database and Redis reachable" } },
    async (_req, reply) => {
      const [db, redis] = await Promise.all([
        ctx.db.sql.query("SELECT 1").then(
          () => true,
          () => false,
        ),
        ctx.fabric.ping().catch(() => false),
      ]);
      if (!db || !redis)
        return sendError(
          reply,
          "UNAVAILABLE",
          `database ${db ? "up" : "down"}, redis ${redis ? "up" : "down"}`,
        );
      return { status: "ready", database: "up", redis: "up" };
    },
  );
}
