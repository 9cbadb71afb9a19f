// Parsing an environment with a schema: every bad variable in one ConfigError.
import { readFileSync } from "node:fs";
import { ProverBoostError } from "@prover-boost/core";
import type { z } from "zod";

export class ConfigError extends ProverBoostError {
  override readonly name = "ConfigError";
  constructor(message: string, options?: { cause?: unknown }) {
    super("CONFIG_INVALID", message, options);
  }
}

/**
 * Variables that may hold secrets and so may also be given as a file (`<NAME>_FILE`, e.g. a
 * Docker or Kubernetes secret mounted read-only): the file's contents, trimmed, are the value.
 * SETTLER_KEY_FILE is read by settlerKeyFromEnv (chain mode only).
 */
export const fileVariables = ["ADMIN_TOKEN", "DATABASE_URL", "REDIS_URL"] as const;

/**
 * env with every `<NAME>_FILE` of fileVariables read into `<NAME>`. Setting both is refused, as
 * is a file that cannot be read or is empty; the error names the variable, never the contents.
 */
export function resolveFileVariables(env: NodeJS.ProcessEnv): NodeJS.ProcessEnv {
  const out: NodeJS.ProcessEnv = { ...env };
  const problems: string[] = [];
  for (const name of fileVariables) {
    const file = env[`${name}_FILE`]?.trim();
    if (!file) continue;
    if (env[name] !== undefined && env[name]?.trim() !== "") {
      problems.push(`  set ${name} or ${name}_FILE, not both`);
      continue;
    }
    let text: string;
    try {
      text = readFileSync(file, "utf8");
    } catch {
      problems.push(`  ${name}_FILE cannot be read`);
      continue;
    }
    const value = text.trim();
    if (value === "") {
      problems.push(`  ${name}_FILE is empty`);
      continue;
    }
    out[name] = value;
  }
  if (problems.length > 0) {
    throw new ConfigError(`invalid configuration:\n${problems.join("\n")}`);
  }
  return out;
}

/**
 * env without its empty variables: `NAME=` (or compose's `${NAME:-}`) means unset, the default,
 * for every setting alike; read as a number it would be 0, which turns many settings off.
 */
export function withoutEmpty(env: NodeJS.ProcessEnv): NodeJS.ProcessEnv {
  return Object.fromEntries(
    Object.entries(env).filter(([, v]) => v !== undefined && v.trim() !== ""),
  );
}

/**
 * Parses env with a schema (after reading `<NAME>_FILE` variables, see resolveFileVariables; an
 * empty variable is unset, see withoutEmpty); throws ConfigError listing every bad variable.
 */
export function parseEnv<S extends z.ZodType>(schema: S, env: NodeJS.ProcessEnv): z.infer<S> {
  const result = schema.safeParse(resolveFileVariables(withoutEmpty(env)));
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
