// A relay in its own OS process, for tests that run several relays against one Redis and one
// Postgres. Run it as `node --import tsx test/children/relay-child.ts` with the relay's usual
// environment plus PB_TEST_SCHEMA (the Postgres schema, created and migrated by the parent).
// Once it listens (on a free loopback port) it prints one line: {"url":"http://127.0.0.1:<port>"}.
// Its log (at LOG_LEVEL) goes to stderr. It shuts down cleanly on SIGTERM or SIGINT, and when its stdin closes (its parent is gone).
import { parseEnv, relayEnv } from "@prover-boost/config";
import { createRelay } from "@prover-boost/relay";
import pino from "pino";

const env = parseEnv(relayEnv, process.env);
const schema = process.env.PB_TEST_SCHEMA;
// Logs (at LOG_LEVEL) go to stderr, which the parent keeps for its failure messages.
const logger = pino({ level: env.LOG_LEVEL, name: "relay-child" }, pino.destination(2));
const relay = await createRelay(env, { ...(schema ? { schema } : {}), logger });
await relay.app.listen({ port: 0, host: "127.0.0.1" });
const address = relay.app.server.address();
if (!address || typeof address !== "object") throw new Error("the relay is not listening");
process.stdout.write(`${JSON.stringify({ url: `http://127.0.0.1:${address.port}` })}\n`);

let closing = false;
async function shutdown() {
  if (closing) return;
  closing = true;
  try {
    await relay.close();
  } finally {
    process.exit(0);
  }
}
process.on("SIGTERM", () => void shutdown());
process.on("SIGINT", () => void shutdown());
process.stdin.on("end", () => void shutdown());
process.stdin.resume();
