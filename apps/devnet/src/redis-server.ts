// Redis for the devnet: REDIS_URL when given; otherwise a private redis-server from PATH on a
// free loopback port, stopped on exit.

import { type ChildProcess, spawn } from "node:child_process";
import { createServer } from "node:net";
import { redactUrl } from "@prover-boost/config";
import { ProverBoostError } from "@prover-boost/core";
import { killWithThisProcess } from "@prover-boost/escrow";
import { Redis } from "ioredis";

export class RedisUnavailableError extends ProverBoostError {
  override readonly name = "RedisUnavailableError";
  constructor(message: string, options?: { cause?: unknown }) {
    super("REDIS_UNAVAILABLE", message, options);
  }
}

export interface RedisHandle {
  url: string;
  /** True when the devnet started this server itself. */
  owned: boolean;
  /** The server's process id, when the devnet started it. */
  pid?: number;
  /**
   * When the devnet started it: settles, with how it ended, if the server exits on its own
   * (never after stop()).
   */
  died?: Promise<string>;
  stop(): Promise<void>;
}

async function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const srv = createServer();
    srv.once("error", reject);
    srv.listen(0, "127.0.0.1", () => {
      const addr = srv.address();
      const port = typeof addr === "object" && addr ? addr.port : 0;
      srv.close(() => resolve(port));
    });
  });
}

/** Whether a Redis answers a PING at `url` now (one try, no reconnecting). */
export async function answersPing(url: string): Promise<boolean> {
  const client = new Redis(url, {
    lazyConnect: true,
    maxRetriesPerRequest: 0,
    retryStrategy: () => null,
  });
  client.on("error", () => {});
  try {
    await client.connect();
    return (await client.ping()) === "PONG";
  } catch {
    return false;
  } finally {
    client.disconnect();
  }
}

async function waitForPing(
  url: string,
  timeoutMs: number,
  gone: () => string | null = () => null,
): Promise<void> {
  const until = Date.now() + timeoutMs;
  while (!(await answersPing(url))) {
    const why = gone();
    if (why) throw new RedisUnavailableError(`redis-server ${why} before answering at ${url}`);
    if (Date.now() > until) {
      throw new RedisUnavailableError(`no Redis answered at ${redactUrl(url)}`);
    }
    await new Promise((r) => setTimeout(r, 50));
  }
}

export async function provideRedis(redisUrl: string | undefined): Promise<RedisHandle> {
  if (redisUrl) {
    await waitForPing(redisUrl, 3000);
    return { url: redisUrl, owned: false, stop: async () => {} };
  }
  const port = await freePort();
  let child: ChildProcess;
  try {
    child = await new Promise<ChildProcess>((resolve, reject) => {
      const c = spawn(
        "redis-server",
        [
          "--port",
          String(port),
          "--bind",
          "127.0.0.1",
          "--save",
          "",
          "--appendonly",
          "no",
          "--loglevel",
          "warning",
        ],
        // A process group of its own: a Ctrl-C in the terminal signals the devnet's group, and
        // the devnet stops its services before this server (they need it to close cleanly).
        { stdio: "ignore", detached: true },
      );
      c.once("error", reject);
      c.once("spawn", () => resolve(c));
    });
  } catch {
    throw new RedisUnavailableError(
      "Redis is needed: set REDIS_URL to a Redis >= 6.2 (e.g. redis://127.0.0.1:6379), or install " +
        "redis-server so it is on PATH (Debian/Ubuntu: apt-get install redis-server; macOS: brew install redis), " +
        "or run `docker compose up -d redis` and set REDIS_URL=redis://127.0.0.1:6379.",
    );
  }
  // Outside the devnet's group, the server would outlive a devnet that exits without stopping it
  // (an uncaught error, a second Ctrl-C): it goes with the process, even one killed with SIGKILL
  // (child-guard.ts).
  killWithThisProcess(child);
  const killOnExit = () => {
    if (child.exitCode === null && child.signalCode === null) child.kill("SIGKILL");
  };
  process.once("exit", killOnExit);
  const url = `redis://127.0.0.1:${port}`;
  let stopping = false;
  let ended: string | null = null;
  const died = new Promise<string>((resolve) => {
    child.once("exit", (code, signal) => {
      ended = signal ? `was killed (${signal})` : `exited with code ${code}`;
      if (!stopping) resolve(ended);
    });
  });
  try {
    await waitForPing(url, 5000, () => ended);
  } catch (err) {
    killOnExit();
    process.off("exit", killOnExit);
    throw err;
  }
  return {
    url,
    owned: true,
    ...(child.pid === undefined ? {} : { pid: child.pid }),
    died,
    stop: () =>
      new Promise<void>((resolve) => {
        stopping = true;
        process.off("exit", killOnExit);
        if (child.exitCode !== null || child.signalCode !== null) return resolve();
        child.once("exit", () => resolve());
        child.kill("SIGTERM");
      }),
  };
}
