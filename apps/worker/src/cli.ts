#!/usr/bin/env -S npx tsx
// prover-boost-worker: the prover worker agent operators run. Parses and validates options (exit
// code 2 on bad input), then either calibrates the backend or runs the workers until SIGINT /
// SIGTERM, when it stops gracefully within SHUTDOWN_GRACE_MS and exits 0 (see HELP_AFTER).
import { closeOnSignals, serveMetrics } from "@prover-boost/config";
import { CommanderError } from "commander";
import pino from "pino";
import { execBackend, poolBackend, simBackend } from "./backends/index.ts";
import { calibrate, formatCalibration } from "./calibrate.ts";
import {
  buildProgram,
  type CliConfig,
  drainMs,
  type RawOptions,
  resolveConfig,
  UsageError,
} from "./cli-options.ts";
import { errorMessage } from "./errors.ts";
import { workerMetrics } from "./metrics.ts";
import { defaultNamePrefix, startWorkers } from "./pool.ts";
import { createProgress, type ProgressDisplay } from "./progress.ts";
import type { ProofBackend, WorkerEvent, WorkerLogger } from "./types.ts";

function makeBackend(config: CliConfig): ProofBackend {
  if (config.backend === "exec" && config.exec) return execBackend(config.exec);
  if (config.backend === "honk") return poolBackend("honk", { threads: config.proveThreads });
  return simBackend({ durationsMs: config.simDurationsMs });
}

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

async function runCalibration(config: CliConfig): Promise<number> {
  const backend = makeBackend(config);
  try {
    const rows = await calibrate(backend, {
      jobTypes: config.jobTypes,
      proofSystem: config.backend === "honk" ? "honk" : "sim",
    });
    process.stdout.write(formatCalibration(rows, backend.name));
    return 0;
  } catch (err) {
    process.stderr.write(`calibration failed: ${errorMessage(err)}\n`);
    return 1;
  } finally {
    await backend.close?.();
  }
}

async function runWorkers(config: CliConfig): Promise<void> {
  const namePrefix = config.namePrefix ?? defaultNamePrefix();
  const workerIds = Array.from({ length: config.workers }, (_, i) => `${namePrefix}-${i}`);
  let progress: ProgressDisplay | undefined;
  let logger: WorkerLogger;
  if (process.stdout.isTTY) {
    progress = createProgress({ workerIds, level: config.logLevel });
    logger = progress.logger;
  } else {
    logger = pino({
      name: "prover-boost-worker",
      level: config.logLevel,
      timestamp: pino.stdTimeFunctions.isoTime,
    });
  }
  const backend = makeBackend(config);
  const metrics = config.metricsPort > 0 ? workerMetrics(backend.name) : null;
  const metricsServer = metrics
    ? await serveMetrics(metrics.registry, { port: config.metricsPort, host: config.metricsHost })
    : null;
  const onEvent =
    progress && metrics
      ? (e: WorkerEvent) => {
          metrics.onEvent(e);
          progress.onEvent(e);
        }
      : (progress?.onEvent ?? metrics?.onEvent);
  if (metricsServer) logger.info({ port: metricsServer.port }, "metrics served");
  const pool = await startWorkers({
    relayUrl: config.relayUrl,
    operatorKey: config.operatorKey!,
    workers: config.workers,
    capacity: config.capacity,
    tier: config.tier,
    jobTypes: config.jobTypes,
    backend,
    waitMs: config.waitMs,
    namePrefix,
    logger,
    ...(onEvent ? { onEvent } : {}),
  });

  // The first SIGINT / SIGTERM (or an uncaught error) stops leasing, lets in-flight jobs finish
  // for drainMs and hands back the rest, all within the shutdown grace; past it, or on a second
  // signal, the process exits 1 at once.
  closeOnSignals(
    async () => {
      try {
        await pool.stop({ graceMs: drainMs(config.shutdownGraceMs) });
        await backend.close?.();
      } finally {
        await metricsServer?.close();
        progress?.stop();
      }
      const stats = pool.stats();
      if (progress) process.stdout.write(`stopped: ${JSON.stringify(stats)}\n`);
      else logger.info({ ...stats }, "exiting");
    },
    logger,
    { timeoutMs: config.shutdownGraceMs },
  );
}

async function main(argv: string[]): Promise<void> {
  const config = parse(argv);
  if (typeof config === "number") {
    process.exitCode = config;
    return;
  }
  if (config.calibrate) {
    process.exitCode = await runCalibration(config);
    return;
  }
  await runWorkers(config);
}

main(process.argv).catch((err: unknown) => {
  process.stderr.write(`prover-boost-worker: ${errorMessage(err)}\n`);
  process.exit(1);
});
