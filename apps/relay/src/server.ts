// The relay as a service: parse env once, listen, shut down gracefully on SIGINT/SIGTERM.
import { ConfigError, parseEnv, relayEnv } from "@prover-boost/config";
import pino from "pino";
import { createRelay } from "./relay.ts";

async function main() {
  let env: ReturnType<typeof parseEnv<typeof relayEnv>>;
  try {
    env = parseEnv(relayEnv, process.env);
  } catch (err) {
    if (err instanceof ConfigError) {
      console.error(err.message);
      process.exit(2);
    }
    throw err;
  }
  const logger = pino({ level: env.LOG_LEVEL, name: "relay" });
  if (env.SEQUENCERS.length === 0) logger.warn("SEQUENCERS is empty: no one may open auctions");
  const relay = await createRelay(env, { logger });
  await relay.app.listen({ port: env.PORT, host: env.HOST });
  let closing = false;
  const shutdown = async (signal: string) => {
    if (closing) return;
    closing = true;
    logger.info({ signal }, "shutting down");
    await relay.close();
    process.exit(0);
  };
  process.on("SIGINT", () => void shutdown("SIGINT"));
  process.on("SIGTERM", () => void shutdown("SIGTERM"));
}

main().catch((err) => {
  console.error(err);
  process.exit(1);
});
