// Prometheus metrics at GET /metrics: HTTP requests here, the market's in domain-metrics.ts.
import { operations } from "@prover-boost/contract";
import type { FastifyInstance } from "fastify";
import { Counter, Histogram, type Registry } from "prom-client";
import { schemaOf } from "./routes/operation.ts";

/** HTTP metrics into the relay's registry (domain-metrics.ts holds it, with the market's). */
export function registerMetrics(app: FastifyInstance, registry: Registry) {
  const requests = new Counter({
    name: "prover_boost_http_requests_total",
    help: "HTTP requests by route and status",
    labelNames: ["method", "route", "status"],
    registers: [registry],
  });
  const duration = new Histogram({
    name: "prover_boost_http_request_duration_seconds",
    help: "HTTP request duration by route",
    labelNames: ["method", "route"],
    buckets: [0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 5, 30],
    registers: [registry],
  });
  app.addHook("onResponse", async (req, reply) => {
    const route = req.routeOptions.url ?? "unmatched";
    requests.inc({ method: req.method, route, status: String(reply.statusCode) });
    duration.observe({ method: req.method, route }, reply.elapsedTime / 1000);
  });
  const { metrics } = operations;
  app.route({
    method: metrics.method,
    url: metrics.path,
    schema: schemaOf(metrics),
    handler: async (_req, reply) => {
      reply.header("content-type", registry.contentType);
      return registry.metrics();
    },
  });
}
