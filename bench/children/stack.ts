// A relay and an aggregator in one process (sharing one database), configured from the
// environment; prints {"url": ...} on stdout once listening. Used by the benchmarks so that the
// load generator runs in a separate process.
import { createAggregator } from "@prover-boost/aggregator";
import { aggregatorEnv, parseEnv, relayEnv } from "@prover-boost/config";
import { openDatabaseFromEnv } from "@prover-boost/db";
import { createRelay } from "@prover-boost/relay";

const relayConfig = parseEnv(relayEnv, process.env);
const db = await openDatabaseFromEnv(relayConfig, { poolSize: 20 });
const relay = await createRelay(relayConfig, { db });
await relay.app.listen({ port: 0, host: "127.0.0.1" });
const service = process.env.BENCH_NO_AGGREGATOR
  ? null
  : await createAggregator(parseEnv(aggregatorEnv, process.env), { db });
service?.aggregator.start();
const addr = relay.app.server.address();
process.stdout.write(
  `${JSON.stringify({ url: `http://127.0.0.1:${typeof addr === "object" && addr ? addr.port : 0}` })}\n`,
);
const stop = async () => {
  await service?.close();
  await relay.close();
  await db.close();
  process.exit(0);
};
process.on("SIGTERM", () => void stop());
process.on("SIGINT", () => void stop());
