// The CLI's options: the commander program (flags with environment fallbacks) and their
// validation into a config. Invalid input is a UsageError; the CLI exits 2 on it.
import { readFileSync } from "node:fs";
// The light modules of core only: --help must not load viem and the rest of it.
import { ProverBoostError } from "@prover-boost/core/errors";
import { jobTypes as allJobTypes, type JobType } from "@prover-boost/core/tree";
import { Command, Option } from "commander";
import type { Hex } from "viem";
import { DEFAULT_MAX_REJECTIONS, DEFAULT_WAIT_MS } from "./defaults.ts";
import { unsetEmptyOptionEnv } from "./operator/env.ts";

export class UsageError extends ProverBoostError {
  override readonly name = "UsageError";
  constructor(message: string, options?: { cause?: unknown }) {
    super("USAGE", message, options);
  }
}

export const logLevels = ["fatal", "error", "warn", "info", "debug", "trace", "silent"] as const;
export type LogLevel = (typeof logLevels)[number];

export interface RawOptions {
  relay: string;
  key?: string;
  keyFile?: string;
  workers: string;
  capacity: string;
  tier: string;
  jobTypes?: string;
  backend: string;
  execCommand?: string;
  execArgs?: string[];
  execTimeoutMs: string;
  simDurations?: string;
  proveThreads?: string;
  waitMs: string;
  namePrefix?: string;
  logLevel: string;
  shutdownGraceMs: string;
  maxRejections: string;
  metricsPort: string;
  metricsHost: string;
  calibrate?: boolean;
  calibrateSystem?: string;
}

export interface CliConfig {
  relayUrl: string;
  /** Absent only with --calibrate. */
  operatorKey?: Hex;
  workers: number;
  capacity: number;
  tier: number;
  jobTypes: JobType[];
  backend: "sim" | "honk" | "exec";
  exec?: { command: string; args: string[]; timeoutMs: number };
  /** honk: proving threads (undefined: the machine's parallelism minus one). */
  proveThreads?: number;
  simDurationsMs: Partial<Record<JobType, number>>;
  waitMs: number;
  namePrefix?: string;
  logLevel: LogLevel;
  /** How long a stop may take in all (SHUTDOWN_GRACE_MS); the drain fits inside it. */
  shutdownGraceMs: number;
  /** Stop after this many proofs in a row are rejected as invalid (0: never). */
  maxRejections: number;
  /** Prometheus endpoint (GET /metrics); 0: none. */
  metricsPort: number;
  metricsHost: string;
  calibrate: boolean;
  /** --calibrate: the proof system of the synthetic jobs (default: honk for honk, else sim). */
  calibrateSystem: "sim" | "honk";
}

/**
 * The part of the shutdown grace in-flight jobs get to finish: the rest (half of it, at most
 * 5 s) is kept for handing back the unfinished ones, so the whole stop fits inside the grace.
 */
export function drainMs(shutdownGraceMs: number): number {
  return shutdownGraceMs - Math.min(5000, Math.floor(shutdownGraceMs / 2));
}

/**
 * How a stop spends the shutdown grace: the drain (drainMs), then, of the reserve after it, a
 * quarter (at most 2 s) for the sign-out once stopped and a quarter (at most 1 s) kept spare for
 * the process itself; the rest is how long the unfinished jobs' hand-backs may try. A relay that
 * does not answer then costs the stop no more than the grace: it still exits 0.
 */
export function stopBudget(shutdownGraceMs: number) {
  const graceMs = drainMs(shutdownGraceMs);
  const reserve = shutdownGraceMs - graceMs;
  const signOutMs = Math.min(2000, Math.floor(reserve / 4));
  const spareMs = Math.min(1000, Math.floor(reserve / 4));
  return { graceMs, signOutMs, handBackMs: reserve - signOutMs - spareMs };
}

/** The help text after the options; `name` is how the agent was invoked. */
const helpAfter = (name: string) => `
Backends:
  sim   A SIMULATION: waits a set time per job type and returns the relay's sim proof.
  honk  Real UltraHonk proofs (Noir circuits, bb.js) on --prove-threads worker threads; for
        blocks whose proof system is honk.
  exec  Runs --exec-command once per job (no shell). stdin: one JSON document { version: 1,
        proofSystem, circuit, node: { type, blockNumber, level, index, txHash?, childOutputs },
        publicInputs (those the proof must carry before its output), job (the lease, with the
        base's txData) }. stdout: { "proof": "0x..", "publicInputs": ["0x<32 bytes>", ...] }
        (or, for sim, the proof as one 0x-hex line); exit code 0. Killed (SIGTERM, then SIGKILL)
        on timeout or lost lease. Each result is verified with the block's proof system before
        it is handed in (docs/proofs.md has the contract).

Examples:
  ${name} --relay http://relay:8080 --key-file ./operator.key --workers 4
  ${name} --backend exec --exec-command ./prove.sh --exec-timeout-ms 900000
  ${name} --calibrate --backend sim --sim-durations base=50,merge=20
  ${name} --calibrate --backend exec --exec-command ./prove.sh --calibrate-system honk

Environment: each option's variable may be given with a PB_ prefix (PB_RELAY_URL,
PB_OPERATOR_KEY_FILE, ...); the prefixed name wins. Prefer --key-file to --key: a key on the
command line shows in ps.

SIGINT / SIGTERM stop leasing, let in-flight jobs finish, hand back the rest (a retryable
fail, never penalized) and exit 0, all within --shutdown-grace-ms (default 10 s: jobs get the
grace minus min(5 s, half of it), handing back the rest); past it the worker exits 1. A second
signal exits 1 at once. An uncaught error is logged as one JSON line, then the worker stops the
same way and exits 1. Exit code 2 means bad options.`;

/** The agent's options; `name` (its usage line) is how it was invoked. */
export function buildProgram(name = "prover-boost-worker"): Command {
  return new Command(name)
    .description(
      "Prover worker agent: signs in to a prover-boost relay with the operator key, leases proof " +
        "jobs, proves them with a backend (sim or an external command) and hands the proofs in.",
    )
    .addOption(
      new Option("--relay <url>", "relay base URL")
        .env("RELAY_URL")
        .default("http://127.0.0.1:8080"),
    )
    .addOption(new Option("--key <hex>", "operator private key (32-byte hex)").env("OPERATOR_KEY"))
    .addOption(
      new Option("--key-file <path>", "file holding the operator private key").env(
        "OPERATOR_KEY_FILE",
      ),
    )
    .addOption(new Option("--workers <n>", "worker sessions to run").env("WORKERS").default("1"))
    .addOption(
      new Option("--capacity <n>", "concurrent jobs per worker").env("CAPACITY").default("1"),
    )
    .addOption(
      new Option(
        "--tier <n>",
        "hardware tier signed into each login (0-255); the relay's JOB_MIN_TIER decides what it may lease",
      )
        .env("TIER")
        .default("0"),
    )
    .addOption(
      new Option(
        "--job-types <list>",
        `comma-separated job types (default: all of ${allJobTypes.join(",")})`,
      ).env("JOB_TYPES"),
    )
    .addOption(
      new Option("--backend <name>", "proof backend")
        .choices(["sim", "honk", "exec"])
        .env("BACKEND")
        .default("sim"),
    )
    .addOption(
      new Option(
        "--exec-command <cmd>",
        "exec backend: prover to run per job (node and job JSON on stdin, proof on stdout)",
      ).env("EXEC_COMMAND"),
    )
    .addOption(
      new Option(
        "--exec-args <args...>",
        "exec backend: arguments for the command (use --exec-args=-x for dashes)",
      ),
    )
    .addOption(
      new Option("--exec-timeout-ms <ms>", "exec backend: time limit per job")
        .env("EXEC_TIMEOUT_MS")
        .default("600000"),
    )
    .addOption(
      new Option(
        "--sim-durations <list>",
        "sim backend: base=ms,merge=ms,... (default base=200,merge=100,...)",
      ).env("SIM_DURATIONS"),
    )
    .addOption(
      new Option(
        "--prove-threads <n>",
        "honk backend: proving threads (default: cores minus one)",
      ).env("PROVE_THREADS"),
    )
    .addOption(
      new Option("--wait-ms <ms>", "lease long-poll wait, 0..30000")
        .env("WAIT_MS")
        .default(String(DEFAULT_WAIT_MS)),
    )
    .addOption(
      new Option("--name-prefix <prefix>", "worker id prefix (default: host name)").env(
        "WORKER_NAME_PREFIX",
      ),
    )
    .addOption(
      new Option("--log-level <level>", "log level")
        .choices(logLevels)
        .env("LOG_LEVEL")
        .default("info"),
    )
    .addOption(
      new Option(
        "--shutdown-grace-ms <ms>",
        "how long a stop may take (finish or hand back jobs), then exit anyway",
      )
        .env("SHUTDOWN_GRACE_MS")
        .default("10000"),
    )
    .addOption(
      new Option(
        "--max-rejections <n>",
        "stop (exit 1) after this many proofs in a row are rejected as invalid, each a penalty (0: never)",
      )
        .env("MAX_REJECTIONS")
        .default(String(DEFAULT_MAX_REJECTIONS)),
    )
    .addOption(
      new Option("--metrics-port <port>", "serve Prometheus metrics on this port (0: off)")
        .env("METRICS_PORT")
        .default("0"),
    )
    .addOption(
      new Option("--metrics-host <host>", "address the metrics endpoint binds to")
        .env("METRICS_HOST")
        .default("127.0.0.1"),
    )
    .option(
      "--calibrate",
      "prove 5 synthetic jobs of each type with the backend, print timings, exit",
    )
    .addOption(
      new Option(
        "--calibrate-system <name>",
        "--calibrate: the proof system of its jobs (exec: what your prover proves; default: honk for --backend honk, else sim)",
      ).choices(["sim", "honk"]),
    )
    .showHelpAfterError("(run with --help for usage)")
    .addHelpText("after", helpAfter(name));
}

/**
 * `args` (those after the command) parsed with `program`, an empty environment variable counting
 * as unset. Throws CommanderError on bad usage and for --help (with exitOverride).
 */
export function parseOptions(program: Command, args: readonly string[]): RawOptions {
  unsetEmptyOptionEnv(program);
  program.parse(args, { from: "user" });
  return program.opts<RawOptions>();
}

/** Node's longest timer (ms): a longer one fires after 1 ms. (Not @prover-boost/config's: --help stays light.) */
const LONGEST_TIMER_MS = 2_147_483_647;

function int(flag: string, raw: string, min: number, max = Number.MAX_SAFE_INTEGER): number {
  const s = raw.trim();
  const n = /^\d+$/.test(s) ? Number(s) : Number.NaN;
  if (!Number.isSafeInteger(n) || n < min || n > max) {
    const what =
      min === 1 && max === Number.MAX_SAFE_INTEGER
        ? "a positive integer"
        : `an integer in ${min}..${max}`;
    throw new UsageError(`${flag} must be ${what}, got ${JSON.stringify(raw)}`);
  }
  return n;
}

/** The operator key from --key or --key-file (never both); undefined when neither is given. */
export function readOperatorKey(
  key: string | undefined,
  keyFile: string | undefined,
): Hex | undefined {
  if (key !== undefined && keyFile !== undefined) {
    throw new UsageError(
      "give either --key (OPERATOR_KEY) or --key-file (OPERATOR_KEY_FILE), not both",
    );
  }
  if (key !== undefined) return parseKey(key, "--key");
  if (keyFile === undefined) return undefined;
  let text: string;
  try {
    text = readFileSync(keyFile, "utf8");
  } catch (err) {
    throw new UsageError(`cannot read --key-file ${keyFile}: ${(err as Error).message}`);
  }
  return parseKey(text, `--key-file ${keyFile}`);
}

export function parseKey(raw: string, source: string): Hex {
  const s = raw.trim();
  const hex = s.startsWith("0x") || s.startsWith("0X") ? s.slice(2) : s;
  if (!/^[0-9a-fA-F]{64}$/.test(hex)) {
    throw new UsageError(`${source} must be a 32-byte hex private key (0x + 64 hex characters)`);
  }
  return `0x${hex.toLowerCase()}`;
}

function parseJobTypes(raw: string): JobType[] {
  const list = raw
    .split(",")
    .map((s) => s.trim())
    .filter((s) => s.length > 0);
  const bad = list.filter((t) => !allJobTypes.includes(t as JobType));
  if (list.length === 0 || bad.length > 0) {
    throw new UsageError(
      `--job-types must list job types from ${allJobTypes.join(", ")}; got ${JSON.stringify(raw)}`,
    );
  }
  return [...new Set(list as JobType[])];
}

export function parseSimDurations(raw: string): Partial<Record<JobType, number>> {
  const out: Partial<Record<JobType, number>> = {};
  for (const part of raw
    .split(",")
    .map((s) => s.trim())
    .filter(Boolean)) {
    const m = /^([a-z_]+)=(\d+)$/.exec(part);
    if (!m || !allJobTypes.includes(m[1] as JobType)) {
      throw new UsageError(
        `--sim-durations must be type=ms pairs (types: ${allJobTypes.join(", ")}); bad part ${JSON.stringify(part)}`,
      );
    }
    out[m[1] as JobType] = int(`--sim-durations ${m[1]}`, m[2]!, 0);
  }
  return out;
}

export function resolveConfig(o: RawOptions): CliConfig {
  let relayUrl: URL;
  try {
    relayUrl = new URL(o.relay);
  } catch {
    throw new UsageError(`--relay must be an http(s) URL, got ${JSON.stringify(o.relay)}`);
  }
  if (relayUrl.protocol !== "http:" && relayUrl.protocol !== "https:") {
    throw new UsageError(`--relay must be an http(s) URL, got ${JSON.stringify(o.relay)}`);
  }
  const workers = int("--workers", o.workers, 1);
  const capacity = int("--capacity", o.capacity, 1);
  const tier = int("--tier", o.tier, 0, 255);
  const waitMs = int("--wait-ms", o.waitMs, 0, 30_000);
  // Both are set as timers: Node fires a longer one after 1 ms.
  const timeoutMs = int("--exec-timeout-ms", o.execTimeoutMs, 1, LONGEST_TIMER_MS);
  // At least a second: handing the unfinished jobs back takes a round trip to the relay, and a
  // stop with no time for it lets every one of them lapse, each a withholding.
  const shutdownGraceMs = int("--shutdown-grace-ms", o.shutdownGraceMs, 1000, LONGEST_TIMER_MS);
  const maxRejections = int("--max-rejections", o.maxRejections, 0);
  const metricsPort = int("--metrics-port", o.metricsPort, 0, 65_535);
  const metricsHost = o.metricsHost.trim();
  if (metricsHost === "") throw new UsageError("--metrics-host must not be empty");
  const jobTypes = o.jobTypes !== undefined ? parseJobTypes(o.jobTypes) : [...allJobTypes];
  const simDurationsMs = o.simDurations !== undefined ? parseSimDurations(o.simDurations) : {};
  const operatorKey = readOperatorKey(o.key, o.keyFile);
  const calibrate = o.calibrate === true;
  if (!calibrate && operatorKey === undefined) {
    throw new UsageError(
      "an operator key is required: --key <hex> or --key-file <path> (or OPERATOR_KEY)",
    );
  }
  const backend = o.backend === "exec" ? "exec" : o.backend === "honk" ? "honk" : "sim";
  let proveThreads: number | undefined;
  if (o.proveThreads !== undefined) {
    proveThreads = Number(o.proveThreads);
    if (!Number.isInteger(proveThreads) || proveThreads < 1 || proveThreads > 256) {
      throw new UsageError("--prove-threads must be an integer from 1 to 256");
    }
  }
  let exec: CliConfig["exec"];
  if (backend === "exec") {
    const command = o.execCommand?.trim();
    if (!command)
      throw new UsageError("--backend exec needs --exec-command <cmd> (or EXEC_COMMAND)");
    exec = { command, args: o.execArgs ?? [], timeoutMs };
  }
  const calibrateSystem = o.calibrateSystem ?? (backend === "honk" ? "honk" : "sim");
  if (o.calibrateSystem !== undefined && !calibrate) {
    throw new UsageError("--calibrate-system is for --calibrate only");
  }
  if (calibrateSystem !== "sim" && calibrateSystem !== "honk") {
    throw new UsageError("--calibrate-system must be sim or honk");
  }
  if (backend !== "exec" && calibrateSystem !== backend) {
    throw new UsageError(
      `--backend ${backend} proves ${backend} jobs only: --calibrate-system ${calibrateSystem} is for --backend exec`,
    );
  }
  const prefix = o.namePrefix?.trim();
  if (prefix !== undefined && !/^[A-Za-z0-9._-]{1,48}$/.test(prefix)) {
    throw new UsageError("--name-prefix must be 1-48 characters of A-Z a-z 0-9 . _ -");
  }
  return {
    relayUrl: relayUrl.toString().replace(/\/+$/, ""),
    ...(operatorKey !== undefined ? { operatorKey } : {}),
    workers,
    capacity,
    tier,
    jobTypes,
    backend,
    ...(exec ? { exec } : {}),
    ...(proveThreads !== undefined ? { proveThreads } : {}),
    simDurationsMs,
    waitMs,
    ...(prefix ? { namePrefix: prefix } : {}),
    logLevel: o.logLevel as LogLevel,
    shutdownGraceMs,
    maxRejections,
    metricsPort,
    metricsHost,
    calibrate,
    calibrateSystem,
  };
}
