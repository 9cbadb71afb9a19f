// `npm start` as a user runs it: the devnet's command line, in a process of its own on real Redis
// and an embedded PGlite, prints where the explorer is, that address serves the explorer while
// the devnet runs, and the devnet stops by itself once its one block is paid. With --json, where
// stdout carries the JSON document alone, the address goes to stderr.
import { type ChildProcess, execFileSync, spawn } from "node:child_process";
import { once } from "node:events";
import { mkdtemp, rm } from "node:fs/promises";
import { connect } from "node:net";
import { tmpdir } from "node:os";
import path from "node:path";
import { fileURLToPath } from "node:url";
import { afterAll, describe, expect, it } from "vitest";

const redisUrl = process.env.TEST_REDIS_URL ?? "redis://127.0.0.1:6379";
const cliScript = path.join(path.dirname(fileURLToPath(import.meta.url)), "cli.ts");
const repoRoot = path.resolve(path.dirname(cliScript), "..", "..", "..");
const explorerLine = /^explorer at (http:\/\/127\.0\.0\.1:\d+\/)$/m;

const children: ChildProcess[] = [];
const dirs: string[] = [];
afterAll(async () => {
  for (const c of children) if (c.exitCode === null && c.signalCode === null) c.kill("SIGKILL");
  for (const c of children) if (c.pid) killGroup(c.pid);
  for (const d of dirs) await rm(d, { recursive: true, force: true });
});

async function startCli(extra: string[], opts: { ownRedis?: boolean } = {}) {
  const dir = await mkdtemp(path.join(tmpdir(), "pb-devnet-cli-"));
  dirs.push(dir);
  const env: NodeJS.ProcessEnv = { ...process.env, REDIS_URL: redisUrl, DATA_DIR: dir };
  delete env.DATABASE_URL;
  // Its own redis-server from PATH, as `npm start` on a machine with no REDIS_URL.
  if (opts.ownRedis) delete env.REDIS_URL;
  const child = spawn(
    process.execPath,
    [
      "--import",
      "tsx",
      cliScript,
      ...["--blocks", "1", "--txs", "2", "--operators", "1", "--workers", "1", "--port", "0"],
      ...["--block-time-ms", "500", "--bidding-ms", "3000", "--deadline-ms", "60000"],
      ...[
        "--sim-durations",
        "base=10,merge=10,block_root=10,single_tx_block_root=10,empty_block_root=10",
      ],
      ...extra,
    ],
    {
      cwd: repoRoot,
      env: { ...env, LOG_LEVEL: "silent" },
      stdio: ["ignore", "pipe", "pipe"],
      // A process group of its own, as a terminal gives the command it runs.
      detached: opts.ownRedis === true,
    },
  );
  children.push(child);
  const out = { stdout: "", stderr: "" };
  child.stdout!.on("data", (d) => {
    out.stdout += String(d);
  });
  child.stderr!.on("data", (d) => {
    out.stderr += String(d);
  });
  const exited = once(child, "exit").then(([code]) => code as number | null);
  return { child, out, exited };
}

function killGroup(pid: number) {
  try {
    process.kill(-pid, "SIGKILL");
  } catch {
    // The group is gone.
  }
}

/** Whether something answers on a loopback port. */
const answers = (port: number) =>
  new Promise<boolean>((resolve) => {
    const socket = connect(port, "127.0.0.1");
    socket.once("connect", () => {
      socket.destroy();
      resolve(true);
    });
    socket.once("error", () => resolve(false));
  });

/** Waits until `read()` holds the explorer line (or the process ends without it). */
async function explorerUrlIn(read: () => string, exited: Promise<unknown>): Promise<string> {
  let done = false;
  void exited.then(() => {
    done = true;
  });
  for (;;) {
    const m = explorerLine.exec(read());
    if (m) return m[1]!;
    if (done) throw new Error(`the devnet ended without printing the explorer's address`);
    await new Promise((r) => setTimeout(r, 100));
  }
}

// The devnet compiles first and proves a block: slow on a busy machine, hence the long timeout.
describe("the devnet command", { timeout: 240_000 }, () => {
  it("prints the explorer's address, which serves the explorer while it runs", async () => {
    const cli = await startCli([]);
    const url = await explorerUrlIn(() => cli.out.stdout, cli.exited);
    // It also names the relay the explorer is served by.
    expect(cli.out.stdout).toContain(`relay listening at ${url.slice(0, -1)} `);
    const res = await fetch(url);
    expect(res.status).toBe(200);
    expect(await res.text()).toContain("<title>prover-boost explorer</title>");
    expect(await cli.exited, cli.out.stderr).toBe(0);
  });

  it("with --json, prints it on stderr and keeps stdout for the JSON document", async () => {
    const cli = await startCli(["--json"]);
    const url = await explorerUrlIn(() => cli.out.stderr, cli.exited);
    expect(url).toMatch(/^http:\/\/127\.0\.0\.1:\d+\/$/);
    expect(await cli.exited, cli.out.stderr).toBe(0);
    expect(cli.out.stderr).toContain(`API docs at ${url}docs\n`);
    const report = JSON.parse(cli.out.stdout) as { blocks: { stage: string }[] };
    expect(report.blocks.map((b) => b.stage)).toEqual(["paid"]);
  });

  it("stops cleanly on a Ctrl-C in its terminal, its own Redis last", async () => {
    const cli = await startCli(["--blocks", "1000"], { ownRedis: true });
    const started = /^started redis-server \(pid (\d+)\) at redis:\/\/127\.0\.0\.1:(\d+)$/m;
    await explorerUrlIn(() => cli.out.stdout, cli.exited);
    const [, pid, port] = started.exec(cli.out.stdout)!.map(Number);
    expect(await answers(port!)).toBe(true);
    // Its Redis is out of the group's reach, so the devnet can stop it after its services.
    const group = execFileSync("ps", ["-o", "pgid=", "-p", String(pid)], { encoding: "utf8" });
    expect(Number(group.trim())).not.toBe(cli.child.pid);
    // A terminal's Ctrl-C reaches every process of the command's group at once. The devnet's
    // services need their Redis to close: stopping them once it is gone took half a minute.
    process.kill(-cli.child.pid!, "SIGINT");
    const code = await Promise.race([
      cli.exited,
      new Promise<string>((r) => setTimeout(() => r("still running after 15 s"), 15_000)),
    ]);
    expect(code, cli.out.stderr).toBe(0);
    expect(await answers(port!)).toBe(false);
  });

  it("with --chain, a Ctrl-C in its terminal also stops it cleanly: settlements sent, exit 0, its anvil stopped", async () => {
    const cli = await startCli(["--blocks", "1000", "--chain"], { ownRedis: true });
    await explorerUrlIn(() => cli.out.stdout, cli.exited);
    const anvil = /^started anvil at http:\/\/127\.0\.0\.1:(\d+),/m.exec(cli.out.stdout);
    expect(anvil, cli.out.stdout).not.toBeNull();
    const port = Number(anvil![1]);
    expect(await answers(port)).toBe(true);
    // Out of the group's reach too: the devnet still needs it to settle and reconcile.
    process.kill(-cli.child.pid!, "SIGINT");
    const code = await Promise.race([
      cli.exited,
      new Promise<string>((r) => setTimeout(() => r("still running after 30 s"), 30_000)),
    ]);
    expect(code, `${cli.out.stdout}\n${cli.out.stderr}`).toBe(0);
    expect(cli.out.stderr).not.toMatch(/disagree|Error/);
    expect(await answers(port)).toBe(false);
  });

  it("stops, exit 1, saying so, when its own redis-server dies under it", async () => {
    const cli = await startCli(["--blocks", "1000"], { ownRedis: true });
    await explorerUrlIn(() => cli.out.stdout, cli.exited);
    const [, pid] = /^started redis-server \(pid (\d+)\)/m.exec(cli.out.stdout)!.map(Number);
    process.kill(pid!, "SIGKILL");
    const code = await Promise.race([
      cli.exited,
      new Promise<string>((r) => setTimeout(() => r("still running after 90 s"), 90_000)),
    ]);
    expect(code, cli.out.stderr).toBe(1);
    expect(`${cli.out.stdout}${cli.out.stderr}`).toMatch(
      /the devnet's redis-server was killed \(SIGKILL\): stopping/,
    );
  });

  it("refuses a port above 65535, and says so", async () => {
    const cli = await startCli(["--port", "99999"]);
    expect(await cli.exited).not.toBe(0);
    expect(cli.out.stderr).toContain("--port must be at most 65535");
  });
});
