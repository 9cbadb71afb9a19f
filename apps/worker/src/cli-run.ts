// The worker agent's run: calibration or the workers until a signal. Loaded by cli.ts only once
// the options are valid, so `--help` and usage errors never load the backends, the SDK or pino.
import { closeOnSignals, serveMetrics } from "@prover-boost/config";
import pino from "pino";
import { execBackend, poolBackend, simBackend } from "./backends/index.ts";
import { calibrate, formatCalibration } from "./calibrate.ts";
import { type CliConfig, stopBudget } from "./cli-options.ts";
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

export async function runCalibration(config: CliConfig): Promise<number> {
  const backend = makeBackend(config);
  try {
    const rows = await calibrate(backend, {
      jobTypes: config.jobTypes,
      proofSystem: config.calibrateSystem,
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

export async function runWorkers(config: CliConfig): Promise<void> {
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
  // A permanent refusal of the relay (a sign-in refused for good) stops the agent: it exits 1
  // with the relay's message once stopped.
  let fatal: string | undefined;
  const onEvent = (e: WorkerEvent) => {
    metrics?.onEvent(e);
    progress?.onEvent(e);
    if (e.type === "fatal" && fatal === undefined) {
      fatal = e.message;
      void shutdown()
        .catch(() => {})
        .finally(() => {
          process.stderr.write(`error: ${fatal}\n`);
          process.exit(1);
        });
    }
  };
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
    maxRejections: config.maxRejections,
    namePrefix,
    logger,
    onEvent,
  });

  // The first SIGINT / SIGTERM (or an uncaught error) stops leasing, lets in-flight jobs finish
  // for drainMs and hands back the rest, all within the shutdown grace (stopBudget); past it, or
  // on a second signal, the process exits 1 at once.
  let closing: Promise<void> | undefined;
  const close = async () => {
    try {
      await pool.stop(stopBudget(config.shutdownGraceMs));
      await backend.close?.();
    } finally {
      await metricsServer?.close();
      progress?.stop();
    }
    const stats = pool.stats();
    if (progress) process.stdout.write(`stopped: ${JSON.stringify(stats)}\n`);
    else logger.info({ ...stats }, "exiting");
  };
  /** Stops once, whether for a signal or a fatal refusal. */
  const shutdown = () => {
    closing ??= close();
    return closing;
  };
  closeOnSignals(shutdown, logger, { timeoutMs: config.shutdownGraceMs });
}
