// Worker pools for the agent's tests against a FakeRelay: one operator key, and whatever pool a
// test starts is stopped after it.
import type { Hex } from "viem";
import { privateKeyToAccount } from "viem/accounts";
import { afterEach } from "vitest";
import { startWorkers } from "../pool.ts";
import type { WorkerOptions, WorkerPool } from "../types.ts";

export const testKey: Hex = `0x${"42".repeat(32)}`;
export const testOperator = privateKeyToAccount(testKey).address;

type PoolOptions = Omit<WorkerOptions, "relayUrl" | "operatorKey" | "namePrefix" | "workers"> &
  Partial<Pick<WorkerOptions, "workers">>;

/**
 * Registers an afterEach that stops the pool started by the returned function: one worker of
 * `testKey`'s operator on the fake relay's address unless told otherwise.
 */
export function poolsStoppedAfterEach(): (options: PoolOptions) => Promise<WorkerPool> {
  let pool: WorkerPool | undefined;
  afterEach(async () => {
    await pool?.stop({ graceMs: 0 });
    pool = undefined;
  });
  return async (options) => {
    pool = await startWorkers({
      relayUrl: "http://relay.test",
      operatorKey: testKey,
      workers: 1,
      namePrefix: "t",
      ...options,
    });
    return pool;
  };
}
