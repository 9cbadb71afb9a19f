// A relay or an aggregator in its own OS process, as a deployment runs them, for the fault
// scenarios (which SIGKILL and restart them). FAULT_ROLE is "relay" or "aggregator"; the rest of
// the environment is the service's own (DATABASE_URL with its schema, REDIS_URL, REDIS_PREFIX,
// LEASE_MS, ...). A relay listens on FAULT_PORT (fixed, so a restarted relay is found where its
// workers left it) and prints {"url": ...} once listening; an aggregator prints {"ready": true}
// once its loop runs. Logs at LOG_LEVEL go to stderr. SIGTERM or SIGINT close it.
import { createAggregator } from "@prover-boost/aggregator";
import { aggregatorEnv, parseEnv, relayEnv } from "@prover-boost/config";
import { openDatabaseFromEnv } from "@prover-boost/db";
import { createRelay } from "@prover-boost/relay";
import pino from "pino";

const role = process.env.FAULT_ROLE;
if (role !== "relay" && role !== "aggregator") throw new Error(`bad FAULT_ROLE ${role}`);
const relayConfig = parseEnv(relayEnv, process.env);
const logger = pino({ level: relayConfig.LOG_LEVEL, name: role }, pino.destination(2));
const db = await openDatabaseFromEnv(relayConfig, { poolSize: 10 });
let close: () => Promise<void>;
if (role === "relay") {
  const relay = await createRelay(relayConfig, { db, logger });
  await relay.app.listen({ port: Number(process.env.FAULT_PORT ?? 0), host: "127.0.0.1" });
  const addr = relay.app.server.address();
  const port = typeof addr === "object" && addr ? addr.port : 0;
  process.stdout.write(`${JSON.stringify({ url: `http://127.0.0.1:${port}` })}\n`);
  close = () => relay.close();
} else {
  const service = await createAggregator(parseEnv(aggregatorEnv, process.env), { db, log: logger });
  service.aggregator.start();
  process.stdout.write(`${JSON.stringify({ ready: true })}\n`);
  close = () => service.close();
}

let closing = false;
const stop = async () => {
  if (closing) return;
  closing = true;
  try {
    await close();
    await db.close();
  } finally {
    process.exit(0);
  }
};
process.on("SIGTERM", () => void stop());
process.on("SIGINT", () => void stop());
