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
  const chain = result.data as {
    COLLATERAL?: unknown;
    L1_RPC_URL?: unknown;
    ESCROW_ADDRESS?: unknown;
  };
  if (chain.COLLATERAL === "chain") {
    const missing = (["L1_RPC_URL", "ESCROW_ADDRESS"] as const).filter(
      (k) => chain[k] === undefined,
    );
    if (missing.length > 0) {
      throw new ConfigError(
        `invalid configuration:\n  COLLATERAL=chain needs ${missing.join(" and ")}`,
      );
    }
  }
  return result.data;
}
