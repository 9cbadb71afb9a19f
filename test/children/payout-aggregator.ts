// A real aggregator process for the payout crash test (test/payout-crash.happy.test.ts).
// Environment: the aggregator's own variables (DATABASE_URL, REDIS_URL, REDIS_PREFIX, ...) plus
//   PB_TEST_SCHEMA  the Postgres schema of the test stack
//   PB_TEST_HANG    "1": inside the payout transaction, after its rows are written and before it
//                   commits, print "ready <block>" on stdout and hang for 60 s (to be killed there)
// Prints "started" once its loop runs. SIGTERM closes it cleanly.
import { createAggregator } from "@prover-boost/aggregator";
import { aggregatorEnv, parseEnv } from "@prover-boost/config";

const env = parseEnv(aggregatorEnv, process.env);
const hang = process.env.PB_TEST_HANG === "1";
const service = await createAggregator(env, {
  schema: process.env.PB_TEST_SCHEMA,
  log: {
    info() {},
    warn() {},
    error(obj, msg) {
      process.stderr.write(`${msg ?? "error"} ${String((obj as { err?: unknown }).err ?? "")}\n`);
    },
  },
  hooks: hang
    ? {
        beforeCommit: async (blockNumber) => {
          process.stdout.write(`ready ${blockNumber}\n`);
          await new Promise((r) => setTimeout(r, 60_000));
        },
      }
    : {},
});
service.aggregator.start();
process.stdout.write("started\n");
process.on("SIGTERM", () => {
  void service.close().then(() => process.exit(0));
});
