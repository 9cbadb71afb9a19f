// A relay process told to stop while Redis is stalled (the server accepts but never answers, so
// closing its connections waits for replies that do not come). It must still exit: by its
// shutdown deadline (SHUTDOWN_GRACE_MS, or its older name SHUTDOWN_TIMEOUT_MS), or at once on a
// second signal. With Redis healthy, a
// signal closes it cleanly (status 0). The relay runs as its real service entry point.
import type { ChildProcess } from "node:child_process";
import { randomBytes } from "node:crypto";
import path from "node:path";
import { fileURLToPath } from "node:url";
import { deleteKeysWithPrefix } from "@prover-boost/queue";
import { Redis } from "ioredis";
import pg from "pg";
import { afterEach, describe, expect, it } from "vitest";
import { eventually, sequencer, TEST_DATABASE_URL, TEST_REDIS_URL } from "./harness.ts";
import { testDomainEnv } from "./support/domain.ts";
import { exitWithin, startTsService } from "./support/exit.ts";
import { type FaultProxy, startFaultProxy } from "./support/fault-proxy.ts";

const here = path.dirname(fileURLToPath(import.meta.url));
const serverScript = path.resolve(here, "..", "apps", "relay", "src", "server.ts");

interface RelayProcess {
  child: ChildProcess;
  redisLink: FaultProxy;
  /** Log lines (JSON) the relay wrote so far. */
  logs: Record<string, unknown>[];
  exited: Promise<{ code: number | null; signal: NodeJS.Signals | null }>;
  cleanup(): Promise<void>;
}

async function startRelayProcess(env: Record<string, string>): Promise<RelayProcess> {
  const id = randomBytes(5).toString("hex");
  const prefix = `pbtest-${id}`;
  const schema = `t_shutdown_${id}`;
  const redisLink = await startFaultProxy(TEST_REDIS_URL);
  const db = new URL(TEST_DATABASE_URL);
  db.searchParams.set("schema", schema);
  const { child, logs, stderr, exited } = startTsService(
    serverScript,
    [],
    {
      REDIS_URL: redisLink.url,
      DATABASE_URL: db.toString(),
      REDIS_PREFIX: prefix,
      SEQUENCERS: sequencer.address,
      ...testDomainEnv,
      PORT: "0",
      HOST: "127.0.0.1",
      LOG_LEVEL: "info",
      ...env,
    },
    path.resolve(here, ".."),
  );
  const cleanup = async () => {
    if (child.exitCode === null && child.signalCode === null) child.kill("SIGKILL");
    await exited;
    await redisLink.close();
    const redis = new Redis(TEST_REDIS_URL);
    await deleteKeysWithPrefix(redis, prefix);
    redis.disconnect();
    const client = new pg.Client({ connectionString: TEST_DATABASE_URL });
    await client.connect();
    await client.query(`DROP SCHEMA IF EXISTS "${schema}" CASCADE`);
    await client.end();
  };
  try {
    await eventually(async () => {
      if (child.exitCode !== null) throw new Error(`the relay exited: ${stderr()}`);
      return logs.some((l) => /listening/i.test(String(l.msg)));
    }, 60_000);
  } catch (err) {
    await cleanup();
    throw err;
  }
  return { child, redisLink, logs, exited, cleanup };
}

/** Resolves with the exit, or fails when the process is still running after a generous wait. */
const exitOf = (p: RelayProcess, waitMs?: number) => exitWithin(p.exited, "the relay", waitMs);

const logged = (p: RelayProcess, pattern: RegExp) =>
  p.logs.some((l) => pattern.test(String(l.msg)));

// Starting a relay process compiles it first: slow on a busy machine, hence the long timeout.
describe("relay shutdown", { timeout: 240_000 }, () => {
  let relay: RelayProcess | undefined;
  afterEach(async () => {
    await relay?.cleanup();
    relay = undefined;
  });

  it("closes cleanly on SIGTERM when its dependencies are up", async () => {
    relay = await startRelayProcess({ SHUTDOWN_GRACE_MS: "60000" });
    relay.child.kill("SIGTERM");
    expect(await exitOf(relay)).toEqual({ code: 0, signal: null });
    expect(logged(relay, /shutting down/)).toBe(true);
  });

  it("exits by its deadline when told to stop while Redis is stalled", async () => {
    // Redis replies could take up to the command timeout; the deadline is shorter.
    relay = await startRelayProcess({
      SHUTDOWN_GRACE_MS: "1000",
      REDIS_COMMAND_TIMEOUT_MS: "60000",
    });
    relay.redisLink.stall();
    relay.child.kill("SIGTERM");
    expect(await exitOf(relay)).toEqual({ code: 1, signal: null });
    expect(logged(relay, /shutdown deadline passed/)).toBe(true);
  });

  it("exits at once on a second signal", async () => {
    // The older name of the grace is still read: a deadline this long never passes in the test.
    relay = await startRelayProcess({
      SHUTDOWN_TIMEOUT_MS: "600000",
      REDIS_COMMAND_TIMEOUT_MS: "600000",
    });
    relay.redisLink.stall();
    relay.child.kill("SIGTERM");
    const p = relay;
    await eventually(async () => logged(p, /shutting down/), 30_000);
    relay.child.kill("SIGTERM");
    expect(await exitOf(relay)).toEqual({ code: 1, signal: null });
    expect(logged(relay, /second signal/)).toBe(true);
  });
});
