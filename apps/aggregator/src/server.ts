// The aggregator as a service.
import { aggregatorEnv, closeOnSignals, parseEnvOrExit } from "@prover-boost/config";
import pino from "pino";
import { createAggregator } from "./service.ts";

async function main() {
  const env = parseEnvOrExit(aggregatorEnv, process.env);
  const log = pino({ level: env.LOG_LEVEL, name: "aggregator" });
  const service = await createAggregator(env, { log });
  service.aggregator.start();
  log.info({ tickMs: env.AGGREGATOR_TICK_MS }, "aggregator running");
  closeOnSignals(() => service.close(), log);
}

main().catch((err) => {
  console.error(err);
  process.exit(1);
});
