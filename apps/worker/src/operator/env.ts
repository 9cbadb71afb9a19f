// Environment for the operator CLI and the worker agent (both of its entries: `prover-boost
// worker` and `prover-boost-worker`): every setting may be given with a PB_ prefix (PB_RELAY_URL,
// PB_OPERATOR_KEY, ...), which keeps names unambiguous where several programs share one
// environment. A PB_ name wins over the unprefixed one.

import type { Command } from "commander";

export const ENV_PREFIX = "PB_";

/**
 * Copies each PB_<NAME> onto <NAME>, in place, so the options' environment fallbacks (which read
 * the unprefixed names) see the prefixed value first. Returns the names it set.
 */
export function applyEnvAliases(env: NodeJS.ProcessEnv): string[] {
  const set: string[] = [];
  for (const [key, value] of Object.entries(env)) {
    // An empty PB_ name is unset, as an empty variable is: the unprefixed one, if any, counts.
    if (!key.startsWith(ENV_PREFIX) || value === undefined || value.trim() === "") continue;
    const name = key.slice(ENV_PREFIX.length);
    if (name.length === 0) continue;
    env[name] = value;
    set.push(name);
  }
  return set.sort();
}

/** Whether argv carries a private key in the clear (--key <hex> or --key=<hex>). */
export function keyOnArgv(argv: readonly string[]): boolean {
  return argv.some((a) => a === "--key" || a.startsWith("--key="));
}

export const ARGV_KEY_WARNING =
  "warning: a private key given on the command line is visible to every user of this machine " +
  "(ps, shell history); use --key-file or PB_OPERATOR_KEY_FILE instead\n";

/**
 * What every operator entry does before it parses its options: applies the PB_ aliases to `env`
 * and warns on `stderr` when `args` carry a key.
 */
export function prepareOperatorEnv(
  args: readonly string[],
  env: NodeJS.ProcessEnv = process.env,
  stderr: { write(text: string): unknown } = process.stderr,
): void {
  applyEnvAliases(env);
  if (keyOnArgv(args)) stderr.write(ARGV_KEY_WARNING);
}

/**
 * Unsets, in the environment, each variable an option of `program` (or of one of its subcommands)
 * falls back on that is empty or only whitespace (`WAIT_MS=`, or compose's `${WAIT_MS:-}`): the
 * option takes its default, as the relay and the aggregator read theirs. The rest of the
 * environment (an exec prover's) is left as it is.
 */
export function unsetEmptyOptionEnv(program: Command): void {
  for (const option of program.options) {
    const name = option.envVar;
    if (name !== undefined && process.env[name]?.trim() === "") delete process.env[name];
  }
  // And its subcommands' (the operator CLI's bid, cancel and status).
  for (const command of program.commands) unsetEmptyOptionEnv(command);
}
