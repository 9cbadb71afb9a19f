// The aggregator as a service.
import { aggregatorEnv, ConfigError, parseEnv } from "@prover-boost/config";
import pino from "pino";
import { createAggregator } from "./service.ts";

async function main() {
  let env: ReturnType<typeof parseEnv<typeof aggregatorEnv>>;
  try {
    env = parseEnv(aggregatorEnv, process.env);
  } catch (err) {
    if (err instanceof ConfigError) {
      console.error(err.message);
      process.exit(2);
    }
    throw err;
  }
  const log = pino({ level: env.LOG_LEVEL, name: "aggregator" });
  const service = await createAggregator(env, { log });
  service.aggregator.start();
  log.info({ tickMs: env.AGGREGATOR_TICK_MS }, "aggregator running");
  let closing = false;
  const shutdown = async (signal: string) => {
    if (closing) return;
    closing = true;
    log.info({ signal }, "shutting down");
    await service.close();
    process.exit(0);
  };
  process.on("SIGINT", () => void shutdown("SIGINT"));
  process.on("SIGTERM", () => void shutdown("SIGTERM"));
}

main().catch((err) => {
  console.error(err);
  process.exit(1);
});
