// The aggregator as a service: shuts down on SIGINT/SIGTERM within SHUTDOWN_GRACE_MS (a second
// signal exits at once). Errors are logged as one JSON line. Metrics on METRICS_PORT.
import {
  aggregatorEnv,
  ConfigError,
  closeOnSignals,
  parseEnvOrExit,
  serveMetrics,
  settlerKeyFromEnv,
  shutdownGraceMs,
} from "@prover-boost/config";
import pino from "pino";
import { createAggregator } from "./service.ts";

async function main() {
  const env = parseEnvOrExit(aggregatorEnv, process.env);
  try {
    // Chain mode: the settler key is read now, so a missing or bad one stops the start cleanly.
    settlerKeyFromEnv(env);
  } catch (err) {
    if (!(err instanceof ConfigError)) throw err;
    console.error(err.message);
    process.exit(2);
  }
  const log = pino({ level: env.LOG_LEVEL, name: "aggregator" });
  const service = await createAggregator(env, { log });
  // Prometheus scrapes GET /metrics here (METRICS_PORT; 0 turns it off).
  const metrics =
    env.METRICS_PORT > 0
      ? await serveMetrics(service.ctx.metrics.registry, {
          port: env.METRICS_PORT,
          host: env.METRICS_HOST,
        })
      : null;
  if (metrics) log.info({ port: metrics.port, host: env.METRICS_HOST }, "metrics served");
  closeOnSignals(
    async () => {
      await metrics?.close();
      await service.close();
    },
    log,
    { timeoutMs: shutdownGraceMs(env) },
  );
  service.aggregator.start();
  log.info({ tickMs: env.AGGREGATOR_TICK_MS }, "aggregator running");
}

main().catch((err) => {
  if (err instanceof ConfigError) {
    console.error(err.message);
    process.exit(2);
  }
  pino({ name: "aggregator" }).fatal({ err }, "aggregator failed to start");
  process.exit(1);
});
