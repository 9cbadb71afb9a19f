// prover-boost: the operator CLI. `worker` runs the prover worker agent (its own options),
// `bid` the reference bidding agent, `cancel` withdraws one bid, `status` shows the operator's
// collateral, bids and work. Heavy modules load only for the command that needs them, so
// --help and --version stay fast. Exit code 2 means bad options, 1 a failure.
import { readFileSync } from "node:fs";
import { createRequire } from "node:module";
import { pathToFileURL } from "node:url";
import { Command, CommanderError, Option } from "commander";
import { prepareOperatorEnv, unsetEmptyOptionEnv } from "./env.ts";

interface KeyOptions {
  relay: string;
  key?: string;
  keyFile?: string;
}

function version(): string {
  // The root package's manifest, two levels above this app: found through the app's own
  // package so that it is the same from src/ and from dist/.
  const app = createRequire(import.meta.url).resolve("@prover-boost/worker/package.json");
  const pkg = JSON.parse(
    readFileSync(new URL("../../package.json", pathToFileURL(app)), "utf8"),
  ) as {
    version: string;
  };
  return pkg.version;
}

const ENV_HELP = `
Environment: every option's variable may be given with a PB_ prefix (PB_RELAY_URL,
PB_OPERATOR_KEY_FILE, PB_BID_CONFIG, ...); the prefixed name wins over the unprefixed one.
Prefer --key-file (OPERATOR_KEY_FILE) to --key: a key on the command line shows in ps.`;

function stateOption() {
  return new Option("--state <path>", "file recording the bids placed on open auctions")
    .env("BID_STATE")
    .default("prover-boost-bids.json");
}

function relayOption() {
  return new Option("--relay <url>", "relay base URL")
    .env("RELAY_URL")
    .default("http://127.0.0.1:8080");
}
function keyOptions(): Option[] {
  return [
    new Option("--key <hex>", "operator private key (prefer --key-file)").env("OPERATOR_KEY"),
    new Option("--key-file <path>", "file holding the operator private key").env(
      "OPERATOR_KEY_FILE",
    ),
  ];
}

async function loadAccount(o: KeyOptions) {
  const [{ readOperatorKey, UsageError }, { privateKeyToAccount }] = await Promise.all([
    import("../cli-options.ts"),
    import("viem/accounts"),
  ]);
  const key = readOperatorKey(o.key, o.keyFile);
  if (key === undefined) {
    throw new UsageError(
      "an operator key is required: --key-file <path> (or PB_OPERATOR_KEY_FILE)",
    );
  }
  return privateKeyToAccount(key);
}

async function client(relay: string) {
  const { RelayClient } = await import("@prover-boost/sdk");
  return new RelayClient({ baseUrl: relay });
}

const line = (o: object) => process.stdout.write(`${JSON.stringify(o)}\n`);

async function runBid(
  o: KeyOptions & { config: string; state: string; once?: boolean },
): Promise<number> {
  const [{ readBidConfig }, { bidRound, loadBidState, saveBidState }] = await Promise.all([
    import("./bid-config.ts"),
    import("./bid.ts"),
  ]);
  const config = readBidConfig(o.config);
  const account = await loadAccount(o);
  const relay = await client(o.relay);
  const info = await relay.info();
  // Refused at once if the file is another prover's.
  loadBidState(o.state, account.address);
  const proved = new Set<number>();
  const stop = new AbortController();
  const onSignal = () => stop.abort();
  process.once("SIGINT", onSignal);
  process.once("SIGTERM", onSignal);
  let failed = false;
  const skipped = new Set<string>();
  try {
    for (;;) {
      try {
        // Read afresh each round, so a `cancel` run meanwhile is seen, and kept on saving.
        const state = loadBidState(o.state, account.address);
        const loaded = new Set(state.bids.map((b) => b.bidId));
        const events = await bidRound({ client: relay, account, info, config, state, proved });
        saveBidState(o.state, state, loaded);
        for (const e of events) {
          // A skip is printed once per block and reason, not every round.
          if (e.event === "skip") {
            const key = `${e.blockNumber}:${e.reason}`;
            if (skipped.has(key)) continue;
            skipped.add(key);
          }
          line(e);
        }
        failed = events.some((e) => e.event === "error");
      } catch (err) {
        failed = true;
        line({ event: "error", message: String(err) });
      }
      if (o.once || stop.signal.aborted) break;
      await new Promise<void>((resolve) => {
        const t = setTimeout(resolve, config.pollMs);
        stop.signal.addEventListener("abort", () => {
          clearTimeout(t);
          resolve();
        });
      });
      if (stop.signal.aborted) break;
    }
  } finally {
    process.off("SIGINT", onSignal);
    process.off("SIGTERM", onSignal);
  }
  return o.once && failed ? 1 : 0;
}

async function runCancel(
  blockText: string,
  o: KeyOptions & { state: string; bidId?: string },
): Promise<number> {
  const { UsageError } = await import("../cli-options.ts");
  if (!/^[0-9]{1,15}$/.test(blockText)) {
    throw new UsageError(
      `block number must be a non-negative integer, got ${JSON.stringify(blockText)}`,
    );
  }
  const blockNumber = Number(blockText);
  const { cancelBid, domainOf, loadBidState, saveBidState } = await import("./bid.ts");
  const account = await loadAccount(o);
  const relay = await client(o.relay);
  const state = loadBidState(o.state, account.address);
  const bidId = o.bidId ?? state.bids.find((b) => b.blockNumber === blockNumber)?.bidId;
  if (!bidId) {
    process.stderr.write(
      `no bid on block ${blockNumber} in ${o.state} (give --bid-id, the bidId the relay answered)\n`,
    );
    return 1;
  }
  const bid = { blockNumber, bidId };
  const answer = await cancelBid(relay, account, domainOf(await relay.info()), bid);
  // Read again: the agent may have saved since.
  const now = loadBidState(o.state, account.address);
  now.bids = now.bids.filter((b) => b.bidId !== bidId);
  saveBidState(o.state, now);
  line({ blockNumber, ...answer });
  return 0;
}

async function runStatus(o: KeyOptions & { address?: string; state: string }): Promise<number> {
  const { BidStateOwnerError, listProverBids, loadBidState } = await import("./bid.ts");
  const address =
    o.address !== undefined ? (o.address as `0x${string}`) : (await loadAccount(o)).address;
  const relay = await client(o.relay);
  const [prover, bids] = await Promise.all([
    relay.getProver(address),
    listProverBids(relay, address),
  ]);
  const byStatus: Record<string, number> = {};
  for (const b of bids) byStatus[b.status] = (byStatus[b.status] ?? 0) + 1;
  // The state file's bids, if it is this address's, less those the relay now lists (their
  // auction closed: counted in byStatus).
  const listed = new Set(bids.map((b) => b.bidId));
  let open: { blockNumber: number; bidId: string; createdAt: number }[] = [];
  try {
    open = loadBidState(o.state, address).bids.filter((b) => !listed.has(b.bidId));
  } catch (err) {
    if (!(err instanceof BidStateOwnerError)) throw err;
  }
  line({
    address: prover.address,
    collateral: prover.collateral,
    bids: {
      /** Settled bids (auctions closed), by status, as the relay lists them. */
      byStatus,
      /** Bids on auctions still open, from this operator's bid state file (sealed at the relay). */
      open,
    },
    jobs: { blocksWon: prover.blocksWon, proofsDelivered: prover.proofsDelivered },
    penalties: prover.penalties,
    earnings: prover.earnings,
  });
  return 0;
}

/**
 * Applies the migrations the services would apply at start, with the same migrator and under
 * the same per-schema advisory lock, so it is safe while services start; prints what it applied.
 */
async function runMigrate(): Promise<number> {
  const [{ commonEnv, ConfigError, parseEnv }, { openDatabaseFromEnv }] = await Promise.all([
    import("@prover-boost/config"),
    import("@prover-boost/db"),
  ]);
  let env: ReturnType<typeof commonEnv.parse>;
  try {
    env = parseEnv(commonEnv, process.env);
  } catch (err) {
    if (err instanceof ConfigError) {
      process.stderr.write(`${err.message}\n`);
      return 2;
    }
    throw err;
  }
  // Opening the database migrates it, under the schema's lock; then report what is recorded.
  const db = await openDatabaseFromEnv(env);
  try {
    const rows = await db.sql.query<{ name: string }>(
      `SELECT migration_name AS name FROM "_prisma_migrations"
       WHERE finished_at IS NOT NULL AND rolled_back_at IS NULL ORDER BY migration_name`,
    );
    line({
      database: db.kind,
      schema: db.schema,
      migrations: rows.length,
      latest: rows.at(-1)?.name,
    });
  } finally {
    await db.close();
  }
  return 0;
}

export function buildOperatorProgram(run: (code: Promise<number>) => void): Command {
  const program = new Command("prover-boost")
    .description(
      "prover-boost operator CLI: prove, bid, cancel bids, and read an operator's status",
    )
    .version(version(), "-V, --version")
    .addHelpText("after", ENV_HELP)
    .exitOverride();
  program
    .command("worker")
    .description("run the prover worker agent (prover-boost worker --help for its options)")
    .allowUnknownOption()
    .helpOption(false)
    .argument("[options...]");
  const bid = program
    .command("bid")
    .description(
      "run the reference bidding agent: bid on open auctions by the config file's price rule",
    )
    .addOption(relayOption());
  for (const k of keyOptions()) bid.addOption(k);
  bid
    .addOption(
      new Option("--config <path>", "bid config file (JSON, see README)")
        .env("BID_CONFIG")
        .makeOptionMandatory(),
    )
    .addOption(stateOption())
    .option("--once", "run one round and exit (1 if anything failed)")
    .action((opts) => run(runBid(opts)));
  const cancel = program
    .command("cancel")
    .description("withdraw this operator's open bid on one block (a signed BidCancellation)")
    .argument("<blockNumber>", "the block the bid is on")
    .addOption(relayOption());
  for (const k of keyOptions()) cancel.addOption(k);
  cancel
    .addOption(stateOption())
    .option("--bid-id <id>", "the bid to withdraw (default: the state file's bid on the block)");
  cancel.action((blockNumber: string, opts) => run(runCancel(blockNumber, opts)));
  const status = program
    .command("status")
    .description("print the operator's collateral, bids and work as one JSON line")
    .addOption(relayOption());
  for (const k of keyOptions()) status.addOption(k);
  status.addOption(stateOption());
  status
    .addOption(
      new Option("--address <address>", "an operator address (instead of a key)").env(
        "OPERATOR_ADDRESS",
      ),
    )
    .action((opts) => run(runStatus(opts)));
  program
    .command("migrate")
    .description(
      "apply the database migrations (DATABASE_URL or DATABASE_URL_FILE; without one, PGlite " +
        "under DATA_DIR) under the services' migration lock, then exit",
    )
    .action(() => run(runMigrate()));
  for (const c of program.commands) c.exitOverride();
  return program;
}

async function main(argv: string[]): Promise<number> {
  if (argv[2] === "worker") {
    // The worker agent applies the aliases and warns itself, like its standalone entry.
    const { runWorkerCli } = await import("../cli-main.ts");
    await runWorkerCli(argv.slice(3), "prover-boost worker");
    return -1;
  }
  prepareOperatorEnv(argv.slice(2));
  let pending: Promise<number> | undefined;
  const program = buildOperatorProgram((p) => {
    pending = p;
  });
  unsetEmptyOptionEnv(program);
  try {
    await program.parseAsync(argv);
  } catch (err) {
    if (err instanceof CommanderError) return err.exitCode === 0 ? 0 : 2;
    throw err;
  }
  if (!pending) {
    program.outputHelp({ error: true });
    return 2;
  }
  try {
    return await pending;
  } catch (err) {
    const { UsageError } = await import("../cli-options.ts");
    if (err instanceof UsageError) {
      process.stderr.write(`error: ${err.message}\n`);
      return 2;
    }
    throw err;
  }
}

main(process.argv).then(
  (code) => {
    if (code >= 0) process.exitCode = code;
  },
  (err: unknown) => {
    process.stderr.write(`prover-boost: ${err instanceof Error ? err.message : String(err)}\n`);
    process.exit(1);
  },
);
