// The relay as a service: parse env once, listen, shut down gracefully on SIGINT/SIGTERM within
// SHUTDOWN_GRACE_MS (a second signal exits at once). Errors are logged as one JSON line.
import {
  ConfigError,
  closeOnSignals,
  parseEnvOrExit,
  relayEnv,
  shutdownGraceMs,
} from "@prover-boost/config";
import pino from "pino";
import { createRelay } from "./relay.ts";

async function main() {
  const env = parseEnvOrExit(relayEnv, process.env);
  const logger = pino({ level: env.LOG_LEVEL, name: "relay" });
  if (env.SEQUENCERS.length === 0) logger.warn("SEQUENCERS is empty: no one may open auctions");
  if (env.TRUST_PROXY === true) {
    logger.warn(
      "TRUST_PROXY=true: any X-Forwarded-For is believed; safe only when every client goes " +
        "through a proxy that overwrites it (prefer the proxies' addresses)",
    );
  }
  const relay = await createRelay(env, { logger });
  closeOnSignals(() => relay.close(), logger, { timeoutMs: shutdownGraceMs(env) });
  await relay.listen(env.PORT, env.HOST);
}

main().catch((err) => {
  if (err instanceof ConfigError) {
    console.error(err.message);
    process.exit(2);
  }
  pino({ name: "relay" }).fatal({ err }, "relay failed to start");
  process.exit(1);
});
