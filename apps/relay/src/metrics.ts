// Prometheus metrics at GET /metrics: every request counted and timed here, into the relay's
// registry, which also holds the market's metrics (domain-metrics.ts).
import { operations } from "@prover-boost/contract";
import type { FastifyInstance } from "fastify";
import type { RelayMetrics } from "./domain-metrics.ts";
import { schemaOf } from "./routes/operation.ts";

export function registerMetrics(app: FastifyInstance, metrics: RelayMetrics) {
  const { registry, httpRequests, httpDuration } = metrics;
  app.addHook("onResponse", async (req, reply) => {
    const route = req.routeOptions.url ?? "unmatched";
    httpRequests.inc({ method: req.method, route, status: String(reply.statusCode) });
    httpDuration.observe({ method: req.method, route }, reply.elapsedTime / 1000);
  });
  const { metrics: op } = operations;
  app.route({
    method: op.method,
    url: op.path,
    schema: schemaOf(op),
    handler: async (_req, reply) => {
      reply.header("content-type", registry.contentType);
      return registry.metrics();
    },
  });
}
