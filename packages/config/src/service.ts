// Running a service process: parse its environment once (exit 2 with the reasons when it is
// invalid) and close it once on a signal, within a deadline.
//
// Closing waits on Redis and Postgres (queues flush, pools drain); during an outage that wait has
// no end, and a process that never exits blocks a deploy or a restart. So the close gets
// SHUTDOWN_GRACE_MS, after which the process exits with status 1 regardless; a second signal
// exits at once (an operator pressing Ctrl-C twice means it). An uncaught exception or unhandled
// rejection is logged as one JSON line and closes the process the same way, with status 1.
import closeWithGrace from "close-with-grace";
import type { z } from "zod";
import { ConfigError, parseEnv } from "./parse.ts";

export function parseEnvOrExit<S extends z.ZodType>(schema: S, env: NodeJS.ProcessEnv): z.infer<S> {
  try {
    return parseEnv(schema, env);
  } catch (err) {
    if (err instanceof ConfigError) {
      console.error(err.message);
      process.exit(2);
    }
    throw err;
  }
}

export const DEFAULT_SHUTDOWN_GRACE_MS = 10_000;

/** SHUTDOWN_GRACE_MS, else its older name SHUTDOWN_TIMEOUT_MS, else 10 s. */
export function shutdownGraceMs(env: {
  SHUTDOWN_GRACE_MS?: number | undefined;
  SHUTDOWN_TIMEOUT_MS?: number | undefined;
}): number {
  return env.SHUTDOWN_GRACE_MS ?? env.SHUTDOWN_TIMEOUT_MS ?? DEFAULT_SHUTDOWN_GRACE_MS;
}

export interface ServiceLog {
  info(obj: object, msg?: string): void;
  error(obj: object, msg?: string): void;
}

export interface CloseOptions {
  /** How long the close may take before the process exits anyway (SHUTDOWN_GRACE_MS). */
  timeoutMs: number;
}

export function closeOnSignals(
  close: () => Promise<void>,
  log: ServiceLog,
  options: CloseOptions,
): void {
  closeWithGrace(
    {
      delay: options.timeoutMs,
      // Started by the event loop running dry, not by anything worth closing for.
      skip: ["beforeExit"],
      logger: false,
      onSecondSignal: (signal) => log.error({ signal }, "second signal: exiting now"),
      onSecondError: (err) => log.error({ err }, "error while shutting down: exiting now"),
      onTimeout: (delay) => log.error({ timeoutMs: delay }, "shutdown deadline passed: exiting"),
    },
    async ({ signal, err }) => {
      if (err) log.error({ err }, "uncaught error: shutting down");
      else log.info({ signal, timeoutMs: options.timeoutMs }, "shutting down");
      try {
        await close();
      } catch (closeErr) {
        log.error({ err: closeErr }, "shutdown failed");
        throw closeErr;
      }
    },
  );
}
