#!/usr/bin/env -S npx tsx
// `npm start`: the local devnet. Human progress by default, one JSON document with --json.
import { Command, InvalidArgumentError } from "commander";
import { type DevnetBlockReport, type DevnetChainReport, runDevnet } from "./devnet.ts";
import { ProgressView } from "./progress.ts";
import { RedisUnavailableError } from "./redis-server.ts";

const positiveInt = (name: string) => (v: string) => {
  if (!/^\d+$/.test(v) || Number(v) < 1)
    throw new InvalidArgumentError(`${name} must be a positive integer`);
  return Number(v);
};
const nonNegativeInt = (name: string) => (v: string) => {
  if (!/^\d+$/.test(v)) throw new InvalidArgumentError(`${name} must be a non-negative integer`);
  return Number(v);
};

function parseDurations(v: string): Record<string, number> {
  const out: Record<string, number> = {};
  for (const pair of v.split(",")) {
    const [k, ms] = pair.split("=");
    if (!k || !ms || !/^\d+$/.test(ms))
      throw new InvalidArgumentError(`bad duration entry: ${pair}`);
    out[k.trim()] = Number(ms);
  }
  return out;
}

const program = new Command("prover-boost-devnet")
  .description(
    "Run prover-boost locally: relay, aggregator, a simulated sequencer and simulated prover operators.\n" +
      "Uses PGlite unless DATABASE_URL is set, and REDIS_URL or a redis-server from PATH.",
  )
  .option(
    "--blocks <n>",
    "stop after N blocks are paid (or expired in open proving; default: run until interrupted)",
    positiveInt("--blocks"),
  )
  .option("--txs <n>", "transactions per block", nonNegativeInt("--txs"), 16)
  .option("--operators <n>", "simulated prover operators", positiveInt("--operators"), 3)
  .option("--workers <n>", "workers per operator", positiveInt("--workers"), 4)
  .option("--seed <s>", "seed for transactions, keys, fees and bonds", "prover-boost")
  .option(
    "--port <n>",
    "relay port, at most 65535 (a free one if taken)",
    (v: string) => {
      const n = nonNegativeInt("--port")(v);
      if (n > 65_535) throw new InvalidArgumentError("--port must be at most 65535");
      return n;
    },
    8080,
  )
  .option("--block-time-ms <ms>", "time between auctions", positiveInt("--block-time-ms"), 2000)
  .option("--bidding-ms <ms>", "bidding window of each auction", positiveInt("--bidding-ms"), 1200)
  .option(
    "--deadline-ms <ms>",
    "proof deadline after bidding closes",
    positiveInt("--deadline-ms"),
    60_000,
  )
  .option(
    "--sim-durations <list>",
    "simulated proving time per job type, e.g. base=200,merge=100,block_root=300",
    parseDurations,
    { base: 200, merge: 100, block_root: 300, single_tx_block_root: 300, empty_block_root: 100 },
  )
  .option(
    "--proofs <system>",
    "proof system of every block: sim (simulated) or honk (real UltraHonk proofs)",
    (v: string) => {
      if (v !== "sim" && v !== "honk") throw new InvalidArgumentError("--proofs is sim or honk");
      return v;
    },
    "sim",
  )
  .option(
    "--prove-threads <n>",
    "honk: proving threads shared by the simulated operators",
    positiveInt("--prove-threads"),
    1,
  )
  .option(
    "--chain",
    "collateral and rewards on a local L1: start anvil, deploy the escrow, deposit, lock and settle on chain",
    false,
  )
  .option("--json", "print one JSON document at the end instead of live progress", false)
  .showHelpAfterError();

async function main() {
  program.parse();
  const o = program.opts();
  const abort = new AbortController();
  // The first Ctrl-C (or SIGTERM, or the terminal closing: SIGHUP) stops the devnet cleanly; a
  // second one quits at once. Its own Redis goes with it either way (redis-server.ts).
  let signals = 0;
  const onSignal = () => {
    signals += 1;
    if (signals > 1) process.exit(130);
    console.error("stopping (Ctrl-C again to quit at once)");
    abort.abort();
  };
  for (const signal of ["SIGINT", "SIGTERM", "SIGHUP"] as const) process.on(signal, onSignal);
  const view = o.json ? null : new ProgressView(process.stdout.isTTY === true);
  let blocks: DevnetBlockReport[];
  let proofSystem: string;
  let chain: DevnetChainReport | undefined;
  try {
    ({ blocks, proofSystem, chain } = await runDevnet({
      blocks: o.blocks,
      txs: o.txs,
      operators: o.operators,
      workers: o.workers,
      seed: o.seed,
      port: o.port,
      blockTimeMs: o.blockTimeMs,
      biddingMs: o.biddingMs,
      deadlineMs: o.deadlineMs,
      simDurationsMs: o.simDurations,
      proofs: o.proofs,
      proveThreads: o.proveThreads,
      env: process.env,
      chain: o.chain,
      signal: abort.signal,
      ...(view
        ? { onBlock: (b) => view.update(b), onInfo: (m) => view.info(m) }
        : // stdout carries the JSON document alone; where to look goes to stderr.
          {
            onListening: ({ relayUrl, explorerUrl }) => {
              console.error(`explorer at ${explorerUrl}`);
              console.error(`API docs at ${relayUrl}/docs`);
            },
          }),
    }));
  } catch (err) {
    view?.stop();
    if (err instanceof RedisUnavailableError) {
      console.error(err.message);
      process.exit(1);
    }
    throw err;
  }
  view?.stop();
  if (o.json) {
    process.stdout.write(
      `${JSON.stringify({ proofSystem, blocks, ...(chain ? { chain } : {}) }, null, 2)}\n`,
    );
  } else {
    ProgressView.summary(blocks, proofSystem);
    if (chain) ProgressView.chainSummary(chain);
  }
  if (chain && !chain.reconciled) {
    const unsent = chain.settlements.filter((s) => s.status === "pending" || s.status === "sent");
    if (abort.signal.aborted && unsent.length > 0) {
      // Stopped with settlements on their way: the ledger is ahead of the escrow by them.
      console.error(
        `interrupted with ${unsent.length} settlement(s) not yet confirmed on the L1: the escrow and the ledger were not compared in full`,
      );
      process.exit(0);
    }
    console.error("the escrow's balances and the ledger's disagree (see the reconciliation)");
    process.exit(1);
  }
  process.exit(0);
}

main().catch((err) => {
  console.error(err);
  process.exit(1);
});
