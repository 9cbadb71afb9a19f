// The devnet's own servers (its private redis-server, and the anvil of `--chain`) never outlive
// it. A devnet that exits or is stopped takes them down itself; one killed with SIGKILL runs no
// code at all, so each server has a watcher that kills it once the devnet is gone. Here a real
// process starts both, as the devnet does, and is killed with SIGKILL: both must stop answering.
import { execFileSync, spawn } from "node:child_process";
import { rpcChainId, startAnvil } from "@prover-boost/escrow";
import { describe, expect, it, onTestFinished } from "vitest";
import { eventually } from "../../../test/harness.ts";
import { answersPing, provideRedis } from "./redis-server.ts";

const here = (file: string) => new URL(file, import.meta.url).href;

/** Starts the servers in a process of its own; resolves with their addresses and the process. */
async function startHolder() {
  const code = `
    const { provideRedis } = await import(${JSON.stringify(here("./redis-server.ts"))});
    const { startAnvil } = await import("@prover-boost/escrow");
    const [redis, anvil] = await Promise.all([provideRedis(undefined), startAnvil()]);
    console.log(JSON.stringify({ redisUrl: redis.url, redisPid: redis.pid, anvilUrl: anvil.url, anvilPid: anvil.pid }));
    setInterval(() => {}, 60_000);
  `;
  const child = spawn(process.execPath, ["--import", "tsx", "--input-type=module", "-e", code], {
    cwd: new URL(".", import.meta.url),
    stdio: ["ignore", "pipe", "inherit"],
  });
  const line = await new Promise<string>((resolve, reject) => {
    let out = "";
    child.stdout!.on("data", (chunk: Buffer) => {
      out += chunk.toString();
      const nl = out.indexOf("\n");
      if (nl >= 0) resolve(out.slice(0, nl));
    });
    child.once("exit", (code) => reject(new Error(`the holder exited (${code}) before starting`)));
  });
  const servers = JSON.parse(line) as {
    redisUrl: string;
    redisPid: number;
    anvilUrl: string;
    anvilPid: number;
  };
  return { child, ...servers };
}

const anvilAnswers = async (url: string) => (await rpcChainId(url)) !== undefined;

/** Whether a process runs (a zombie, killed and not yet reaped by its new parent, does not). */
function running(pid: number): boolean {
  try {
    const state = execFileSync("ps", ["-o", "stat=", "-p", String(pid)])
      .toString()
      .trim();
    return state !== "" && !state.startsWith("Z");
  } catch {
    return false; // ps exits 1 when there is no such process
  }
}

/** The watchers (child-guard.ts) still watching over `pid`. */
function watchersOf(pid: number): string[] {
  return execFileSync("ps", ["-eo", "args="])
    .toString()
    .split("\n")
    .filter((args) => args.includes("child-guard") && args.trim().endsWith(` ${pid}`));
}

describe("the devnet's own servers", () => {
  it("stop within seconds of a devnet killed with SIGKILL", async () => {
    const held = await startHolder();
    onTestFinished(() => {
      held.child.kill("SIGKILL");
      for (const pid of [held.redisPid, held.anvilPid])
        if (running(pid)) process.kill(pid, "SIGKILL");
    });
    expect(await answersPing(held.redisUrl)).toBe(true);
    expect(await anvilAnswers(held.anvilUrl)).toBe(true);
    expect(watchersOf(held.redisPid)).toHaveLength(1);
    held.child.kill("SIGKILL");
    await eventually(async () => {
      expect(await answersPing(held.redisUrl)).toBe(false);
      expect(await anvilAnswers(held.anvilUrl)).toBe(false);
      expect(running(held.redisPid)).toBe(false);
      expect(running(held.anvilPid)).toBe(false);
      return true;
    }, 15_000);
    // Their watchers have nothing left to watch, and are gone too.
    await eventually(async () => {
      expect(watchersOf(held.redisPid)).toEqual([]);
      expect(watchersOf(held.anvilPid)).toEqual([]);
      return true;
    }, 5_000);
  });

  it("leave no watcher behind when stopped as usual", async () => {
    const [redis, anvil] = await Promise.all([provideRedis(undefined), startAnvil()]);
    onTestFinished(() => Promise.all([redis.stop(), anvil.stop()]).then(() => {}));
    expect(watchersOf(redis.pid!)).toHaveLength(1);
    expect(watchersOf(anvil.pid)).toHaveLength(1);
    await Promise.all([redis.stop(), anvil.stop()]);
    expect(await answersPing(redis.url)).toBe(false);
    await eventually(async () => {
      expect(watchersOf(redis.pid!)).toEqual([]);
      expect(watchersOf(anvil.pid)).toEqual([]);
      return true;
    }, 5_000);
  });
});
