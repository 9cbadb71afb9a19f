// A private redis-server for the fault scenarios, on a free loopback port with its own data
// directory. It runs as docker-compose runs Redis (append-only file, `appendfsync everysec`,
// `noeviction`), so a scenario can stop it and start it again on the same port with its data (a
// clean shutdown writes the append-only file out) or without it (killed, directory emptied), or
// keep it down for a while. Its INFO and DBSIZE count only the scenario's own services.
import { type ChildProcess, spawn } from "node:child_process";
import { mkdirSync, mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { Redis } from "ioredis";
import { answersPing } from "../../../apps/devnet/src/redis-server.ts";
import { trackDir, trackProcess, untrackDir } from "./registry.ts";
import { freePort, pollUntil } from "./util.ts";

export interface PrivateRedis {
  url: string;
  /** Starts the server (again) on its port, from whatever its directory holds. */
  start(): Promise<void>;
  /** Clean shutdown: the append-only file is flushed, so a restart keeps the data. */
  shutdown(): Promise<void>;
  /** SIGKILL and an emptied data directory: a restart comes back with nothing. */
  killAndWipe(): Promise<void>;
  /**
   * Stops the server (SIGSTOP) for `ms` and lets it go on (SIGCONT): connections stay open and
   * commands sent meanwhile wait in its sockets, to run when it wakes (a stalled Redis, a host
   * paused under it).
   */
  pause(ms: number): Promise<void>;
  /** Closes every client connection (the services' commands in flight lose their replies). */
  killClients(): Promise<number>;
  /** One INFO section parsed into fields (client, stats, ...). */
  info(section: string): Promise<Record<string, string>>;
  dbsize(): Promise<number>;
  /** How many keys match a glob `pattern` (SCAN, not KEYS). */
  countKeys(pattern: string): Promise<number>;
  /** Stops the server and removes its directory. */
  close(): Promise<void>;
}

export async function startPrivateRedis(): Promise<PrivateRedis> {
  const port = await freePort();
  const dir = mkdtempSync(join(tmpdir(), "pb-faults-redis-"));
  trackDir(dir);
  const url = `redis://127.0.0.1:${port}`;
  let child: ChildProcess | null = null;
  let probe: Redis | null = null;

  const ping = () => answersPing(url);
  const exited = (c: ChildProcess) =>
    new Promise<void>((resolve) => {
      if (c.exitCode !== null || c.signalCode !== null) return resolve();
      c.once("exit", () => resolve());
    });
  const stop = async (signal: NodeJS.Signals) => {
    probe?.disconnect();
    probe = null;
    const c = child;
    child = null;
    if (!c) return;
    const done = exited(c);
    c.kill(signal);
    await done;
  };
  const client = () => {
    if (!probe) {
      probe = new Redis(url, { maxRetriesPerRequest: 1 });
      probe.on("error", () => {});
    }
    return probe;
  };

  const handle: PrivateRedis = {
    url,
    async start() {
      if (child) return;
      const args = [
        "--port",
        String(port),
        "--bind",
        "127.0.0.1",
        "--dir",
        dir,
        "--appendonly",
        "yes",
        "--appendfsync",
        "everysec",
        "--save",
        "",
        "--maxmemory-policy",
        "noeviction",
        "--loglevel",
        "warning",
      ];
      const c = spawn("redis-server", args, { stdio: "ignore" });
      await new Promise<void>((resolve, reject) => {
        c.once("error", reject);
        c.once("spawn", () => resolve());
      });
      trackProcess(c);
      child = c;
      // Loading a large append-only file takes a moment; PING answers once it is loaded.
      await pollUntil(ping, 30_000, 25, "the private redis-server did not answer");
    },
    shutdown: () => stop("SIGTERM"),
    async pause(ms) {
      const c = child;
      if (!c) throw new Error("the private redis-server is not running");
      c.kill("SIGSTOP");
      try {
        await new Promise((r) => setTimeout(r, ms));
      } finally {
        c.kill("SIGCONT");
      }
    },
    async killAndWipe() {
      await stop("SIGKILL");
      rmSync(dir, { recursive: true, force: true });
      mkdirSync(dir, { recursive: true });
    },
    async killClients() {
      let n = 0;
      for (const type of ["normal", "pubsub"]) {
        n += Number(await client().call("CLIENT", "KILL", "TYPE", type, "SKIPME", "yes"));
      }
      return n;
    },
    async info(section) {
      const text = await client().info(section);
      const out: Record<string, string> = {};
      for (const line of text.split("\r\n")) {
        const i = line.indexOf(":");
        if (i > 0) out[line.slice(0, i)] = line.slice(i + 1);
      }
      return out;
    },
    dbsize: () => client().dbsize(),
    async countKeys(pattern) {
      let n = 0;
      let cursor = "0";
      do {
        const [next, keys] = await client().scan(cursor, "MATCH", pattern, "COUNT", 1000);
        cursor = next;
        n += keys.length;
      } while (cursor !== "0");
      return n;
    },
    async close() {
      await stop("SIGKILL");
      rmSync(dir, { recursive: true, force: true });
      untrackDir(dir);
    },
  };
  await handle.start();
  return handle;
}
