// The services a benchmark runs against, configured from the environment, on one database.
// BENCH_ROLE picks what this process runs: "relay" (prints {"url": ...} on stdout once
// listening), "aggregator" (prints {"ready": true} once its loop runs), or "both" (the default:
// one process, as a small deployment might run them). Used by the benchmarks so that the load
// generator runs in a separate process.
import { createAggregator } from "@prover-boost/aggregator";
import { aggregatorEnv, parseEnv, relayEnv } from "@prover-boost/config";
import { openDatabaseFromEnv } from "@prover-boost/db";
import { createRelay } from "@prover-boost/relay";

const role = process.env.BENCH_ROLE ?? "both";
if (!["relay", "aggregator", "both"].includes(role)) throw new Error(`bad BENCH_ROLE ${role}`);
const relayConfig = parseEnv(relayEnv, process.env);
const db = await openDatabaseFromEnv(relayConfig, { poolSize: 20 });
const relay = role === "aggregator" ? null : await createRelay(relayConfig, { db });
const service =
  role === "relay" ? null : await createAggregator(parseEnv(aggregatorEnv, process.env), { db });
service?.aggregator.start();
if (relay) {
  await relay.listen(0, "127.0.0.1");
  const addr = relay.app.server.address();
  const port = typeof addr === "object" && addr ? addr.port : 0;
  process.stdout.write(`${JSON.stringify({ url: `http://127.0.0.1:${port}` })}\n`);
} else {
  process.stdout.write(`${JSON.stringify({ ready: true })}\n`);
}
const stop = async () => {
  await service?.close();
  await relay?.close();
  await db.close();
  process.exit(0);
};
process.on("SIGTERM", () => void stop());
process.on("SIGINT", () => void stop());
