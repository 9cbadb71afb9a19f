// The worker agent's command line, shared by its two entries: `prover-boost-worker` (cli.ts) and
// `prover-boost worker` (operator/main.ts). Applies the PB_ environment aliases and warns of a key
// on argv (operator/env.ts), parses and validates options (an empty variable counts as unset;
// exit code 2 on bad input), then either calibrates the backend or runs the workers until SIGINT /
// SIGTERM, when it stops gracefully within SHUTDOWN_GRACE_MS and exits 0 (see the help text).
import { CommanderError } from "commander";
import {
  buildProgram,
  type CliConfig,
  parseOptions,
  type RawOptions,
  resolveConfig,
  UsageError,
} from "./cli-options.ts";
import { prepareOperatorEnv } from "./operator/env.ts";

function parse(args: string[], name: string): CliConfig | number {
  let raw: RawOptions;
  try {
    raw = parseOptions(buildProgram(name).exitOverride(), args);
  } catch (err) {
    if (err instanceof CommanderError) return err.exitCode === 0 ? 0 : 2;
    throw err;
  }
  try {
    return resolveConfig(raw);
  } catch (err) {
    if (!(err instanceof UsageError)) throw err;
    process.stderr.write(`error: ${err.message}\n(run with --help for usage)\n`);
    return 2;
  }
}

async function main(args: string[], name: string): Promise<void> {
  prepareOperatorEnv(args);
  const config = parse(args, name);
  if (typeof config === "number") {
    process.exitCode = config;
    return;
  }
  const { runCalibration, runWorkers } = await import("./cli-run.ts");
  if (config.calibrate) {
    process.exitCode = await runCalibration(config);
    return;
  }
  await runWorkers(config);
}

/**
 * Runs the worker agent on `args` (the arguments after the command), `name` being how it was
 * invoked (its usage line and error prefix). Sets process.exitCode; exits 1 on an unexpected error.
 */
export function runWorkerCli(args: string[], name: string): Promise<void> {
  return main(args, name).catch(async (err: unknown) => {
    const { errorMessage } = await import("./errors.ts");
    process.stderr.write(`${name}: ${errorMessage(err)}\n`);
    process.exit(1);
  });
}
