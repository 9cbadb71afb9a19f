// Running a service process: parse its environment once (exit 2 with the reasons when it is
// invalid) and close it once on SIGINT/SIGTERM.
import type { z } from "zod";
import { ConfigError, parseEnv } from "./index.ts";

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

export function closeOnSignals(
  close: () => Promise<void>,
  log: { info(obj: object, msg?: string): void },
): void {
  let closing = false;
  const shutdown = async (signal: string) => {
    if (closing) return;
    closing = true;
    log.info({ signal }, "shutting down");
    await close();
    process.exit(0);
  };
  process.on("SIGINT", () => void shutdown("SIGINT"));
  process.on("SIGTERM", () => void shutdown("SIGTERM"));
}
