#!/usr/bin/env -S npx tsx
// prover-boost-worker: the prover worker agent operators run. Parses and validates options (exit
// code 2 on bad input), then either calibrates the backend or runs the workers until SIGINT /
// SIGTERM, when it stops gracefully within SHUTDOWN_GRACE_MS and exits 0 (see HELP_AFTER).
import { CommanderError } from "commander";
import {
  buildProgram,
  type CliConfig,
  type RawOptions,
  resolveConfig,
  UsageError,
} from "./cli-options.ts";

function parse(argv: string[]): CliConfig | number {
  const program = buildProgram().exitOverride();
  try {
    program.parse(argv);
  } catch (err) {
    if (err instanceof CommanderError) return err.exitCode === 0 ? 0 : 2;
    throw err;
  }
  try {
    return resolveConfig(program.opts<RawOptions>());
  } catch (err) {
    if (!(err instanceof UsageError)) throw err;
    process.stderr.write(`error: ${err.message}\n(run with --help for usage)\n`);
    return 2;
  }
}

async function main(argv: string[]): Promise<void> {
  const config = parse(argv);
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

main(process.argv).catch(async (err: unknown) => {
  const { errorMessage } = await import("./errors.ts");
  process.stderr.write(`prover-boost-worker: ${errorMessage(err)}\n`);
  process.exit(1);
});
