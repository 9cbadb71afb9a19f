// Everything a fault world starts, so that nothing outlives the suite even when a scenario is cut
// short (a vitest timeout, Ctrl-C on `npm run faults`): every child process (services, worker
// pools, redis-servers) and every Postgres schema. Worlds remove their own on close; this is the
// backstop.
import type { ChildProcess } from "node:child_process";
import { rmSync } from "node:fs";
import { killWithThisProcess } from "@prover-boost/escrow";
import pg from "pg";
import { TEST_DATABASE_URL } from "../../harness.ts";

const processes = new Set<ChildProcess>();
const schemas = new Set<string>();
const dirs = new Set<string>();

export function trackProcess(child: ChildProcess): void {
  processes.add(child);
  // Gone with this process even if it is killed with SIGKILL (no handler runs then).
  killWithThisProcess(child);
  child.once("exit", () => processes.delete(child));
}

export const trackSchema = (schema: string) => schemas.add(schema);
export const untrackSchema = (schema: string) => schemas.delete(schema);
export const trackDir = (dir: string) => dirs.add(dir);
export const untrackDir = (dir: string) => dirs.delete(dir);

/** SIGKILLs every tracked process (synchronously: safe in a signal handler). */
export function killAll(): void {
  for (const child of processes) {
    if (child.exitCode === null && child.signalCode === null) child.kill("SIGKILL");
  }
  processes.clear();
  for (const dir of dirs) rmSync(dir, { recursive: true, force: true });
  dirs.clear();
}

/** killAll, then drops every schema a world did not get to drop. */
export async function removeEverything(): Promise<void> {
  killAll();
  if (schemas.size === 0) return;
  const client = new pg.Client({ connectionString: TEST_DATABASE_URL });
  await client.connect();
  try {
    for (const schema of schemas) await client.query(`DROP SCHEMA IF EXISTS "${schema}" CASCADE`);
    schemas.clear();
  } finally {
    await client.end();
  }
}
