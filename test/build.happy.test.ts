// The build: the relay and the worker built with the project's tsdown settings (JavaScript only,
// into .build-test/ beside each app's dist/, so a real build is left alone) run as plain node.
// The built relay migrates a new Postgres schema, answers /readyz and stops on SIGTERM; the built
// worker agent and operator CLI print their help. Nothing here is timed.
import { execFile, spawn } from "node:child_process";
import { once } from "node:events";
import { existsSync, readFileSync, rmSync } from "node:fs";
import path from "node:path";
import { fileURLToPath } from "node:url";
import { promisify } from "node:util";
import { deleteKeysWithPrefix } from "@prover-boost/queue";
import { Redis } from "ioredis";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { eventually, TEST_REDIS_URL } from "./harness.ts";
import { dropSchema } from "./support/databases.ts";
import { exitWithin, outputOf } from "./support/exit.ts";
import { freePort } from "./support/ports.ts";
import { relayProcessEnv } from "./support/relay-processes.ts";

const root = path.resolve(path.dirname(fileURLToPath(import.meta.url)), "..");
const run = promisify(execFile);
const OUT = ".build-test";
const out = (app: string, file: string) => path.join(root, "apps", app, OUT, file);
/**
 * The packages a built entry loads before it runs anything: its static imports, followed through
 * the build's own chunks (dynamic `import()`s are left out: they load only when reached).
 */
function staticPackages(file: string, seen = new Set<string>(), found = new Set<string>()) {
  if (seen.has(file)) return found;
  seen.add(file);
  const source = readFileSync(file, "utf8");
  for (const m of source.matchAll(/^import\s+(?:[^"';]*?\sfrom\s+)?["']([^"']+)["'];?$/gm)) {
    const spec = m[1]!;
    if (spec.startsWith(".")) staticPackages(path.resolve(path.dirname(file), spec), seen, found);
    else found.add(spec);
  }
  return found;
}

const tsdown = path.join(root, "node_modules", "tsdown", "dist", "run.mjs");

async function build(app: string) {
  await run(process.execPath, [tsdown], {
    cwd: path.join(root, "apps", app),
    env: { ...process.env, BUILD_DTS: "0", BUILD_OUT_DIR: OUT },
  });
}

describe("the build", { timeout: 240_000 }, () => {
  const schema = `t_build_${Math.random().toString(16).slice(2, 10)}`;
  const prefix = `pb-build-${schema}`;

  beforeAll(async () => {
    await Promise.all([build("relay"), build("worker")]);
  });
  afterAll(async () => {
    for (const app of ["relay", "worker"]) {
      rmSync(path.join(root, "apps", app, OUT), { recursive: true, force: true });
    }
    await dropSchema(schema);
    const redis = new Redis(TEST_REDIS_URL);
    await deleteKeysWithPrefix(redis, prefix);
    redis.disconnect();
  });

  it("emits each entry and the proof pool's thread entry beside it", () => {
    for (const f of ["server.js", "index.js", "pool-thread.js"]) {
      expect(existsSync(out("relay", f)), `relay ${f}`).toBe(true);
    }
    for (const f of ["cli.js", "prover-boost.js", "index.js", "pool-thread.js"]) {
      expect(existsSync(out("worker", f)), `worker ${f}`).toBe(true);
    }
  });

  it("runs the built relay with node alone: it migrates, is ready, and stops on SIGTERM", async () => {
    const port = await freePort();
    const env = relayProcessEnv(schema, prefix);
    const url = new URL(env.DATABASE_URL!);
    url.searchParams.set("schema", schema);
    const child = spawn(process.execPath, [out("relay", "server.js")], {
      cwd: root,
      env: {
        PATH: process.env.PATH ?? "",
        ...env,
        DATABASE_URL: url.toString(),
        PORT: String(port),
      },
      stdio: ["ignore", "pipe", "pipe"],
    });
    const output = outputOf(child);
    const exited = once(child, "exit");
    try {
      const ready = await eventually(async () => {
        if (child.exitCode !== null) throw new Error(`the built relay exited:\n${output()}`);
        const res = await fetch(`http://127.0.0.1:${port}/readyz`).catch(() => null);
        return res?.status === 200 ? ((await res.json()) as Record<string, unknown>) : null;
      }, 120_000);
      expect(ready).toMatchObject({ status: "ready", database: "up", redis: "up" });
      child.kill("SIGTERM");
      const [code] = await exitWithin(exited, "the built relay");
      expect(code).toBe(0);
    } finally {
      if (child.exitCode === null) child.kill("SIGKILL");
    }
  });

  it("runs the built worker agent and operator CLI: --help exits 0", async () => {
    const agent = await run(process.execPath, [out("worker", "cli.js"), "--help"], { cwd: root });
    expect(agent.stdout).toMatch(/^Usage: prover-boost-worker/);
    const cli = await run(process.execPath, [out("worker", "prover-boost.js"), "--help"], {
      cwd: root,
    });
    expect(cli.stdout).toMatch(/^Usage: prover-boost /);
    expect(cli.stdout).toMatch(/\bmigrate\b/);
  });

  it("keeps --help light: the CLIs' entries load no signing, proving or database library", () => {
    for (const entry of ["cli.js", "prover-boost.js"]) {
      const loaded = [...staticPackages(out("worker", entry))];
      const heavy = loaded.filter((p) =>
        /^(viem|@aztec|@noir-lang|@prisma|pino|ioredis|bullmq|piscina)/.test(p),
      );
      expect(heavy, `${entry} loads ${loaded.join(", ")}`).toEqual([]);
    }
  });
});
