// The relay as a service: parse env once, listen, shut down gracefully on SIGINT/SIGTERM.
import { closeOnSignals, parseEnvOrExit, relayEnv } from "@prover-boost/config";
import pino from "pino";
import { createRelay } from "./relay.ts";

async function main() {
  const env = parseEnvOrExit(relayEnv, process.env);
  const logger = pino({ level: env.LOG_LEVEL, name: "relay" });
  if (env.SEQUENCERS.length === 0) logger.warn("SEQUENCERS is empty: no one may open auctions");
  const relay = await createRelay(env, { logger });
  await relay.app.listen({ port: env.PORT, host: env.HOST });
  closeOnSignals(() => relay.close(), logger);
}

main().catch((err) => {
  console.error(err);
  process.exit(1);
});
