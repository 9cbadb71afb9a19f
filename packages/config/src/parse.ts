// Parsing an environment with a schema: every bad variable in one ConfigError.
import { ProverBoostError } from "@prover-boost/core";
import type { z } from "zod";

export class ConfigError extends ProverBoostError {
  override readonly name = "ConfigError";
  constructor(message: string, options?: { cause?: unknown }) {
    super("CONFIG_INVALID", message, options);
  }
}

/** Parses env with a schema; throws ConfigError listing every bad variable. */
export function parseEnv<S extends z.ZodType>(schema: S, env: NodeJS.ProcessEnv): z.infer<S> {
  const result = schema.safeParse(env);
  if (!result.success) {
    const lines = result.error.issues.map((i) => `  ${i.path.join(".")}: ${i.message}`);
    throw new ConfigError(`invalid configuration:\n${lines.join("\n")}`);
  }
  const value = result.data as { CHAIN_ID?: unknown; VERIFYING_CONTRACT?: unknown };
  if ((value.CHAIN_ID === undefined) !== (value.VERIFYING_CONTRACT === undefined)) {
    throw new ConfigError(
      "invalid configuration:\n  CHAIN_ID and VERIFYING_CONTRACT must be set together (or neither)",
    );
  }
  return result.data;
}
