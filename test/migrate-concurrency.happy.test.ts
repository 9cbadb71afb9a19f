// Services started at once on an empty Postgres schema all come up: the relays and aggregators
// are real processes running their own entries (apps/*/src/server.ts), each applying the
// migrations at start. Without the schema's migration lock they race to create the schema and
// the same tables, and some crash (duplicate key in pg_namespace / pg_type).
import { type ChildProcess, spawn } from "node:child_process";
import { randomBytes } from "node:crypto";
import path from "node:path";
import { fileURLToPath } from "node:url";
import { migrationLockKey } from "@prover-boost/db";
import { deleteKeysWithPrefix } from "@prover-boost/queue";
import { Redis } from "ioredis";
import pg from "pg";
import { afterAll, describe, expect, it } from "vitest";
import { ADMIN_TOKEN, sequencer, TEST_DATABASE_URL, TEST_REDIS_URL } from "./harness.ts";
import { dropSchema } from "./support/databases.ts";
import { testDomainEnv } from "./support/domain.ts";
import { freePort } from "./support/ports.ts";

const repoRoot = path.resolve(path.dirname(fileURLToPath(import.meta.url)), "..");
const RELAYS = 3;
const AGGREGATORS = 3;
const START_DEADLINE_MS = 120_000;

const schema = `t_migcon_${randomBytes(5).toString("hex")}`;
const prefix = `pb-migcon-${randomBytes(4).toString("hex")}`;
const children: ChildProcess[] = [];

function withSchema(url: string, name: string): string {
  const u = new URL(url);
  u.searchParams.set("schema", name);
  return u.toString();
}

interface Service {
  child: ChildProcess;
  output: string[];
  exited: Promise<number | null>;
}

function spawnService(entry: string, env: Record<string, string>): Service {
  const child = spawn(process.execPath, ["--import", "tsx", path.join(repoRoot, entry)], {
    cwd: repoRoot,
    env: {
      ...process.env,
      DATABASE_URL: withSchema(TEST_DATABASE_URL, schema),
      REDIS_URL: TEST_REDIS_URL,
      REDIS_PREFIX: prefix,
      SEQUENCERS: sequencer.address,
      ADMIN_TOKEN,
      ...testDomainEnv,
      LOG_LEVEL: "info",
      // Several aggregators on one host: none serves metrics (each would want METRICS_PORT).
      METRICS_PORT: "0",
      ...env,
    },
    stdio: ["ignore", "pipe", "pipe"],
  });
  children.push(child);
  const output: string[] = [];
  child.stdout!.on("data", (d: Buffer) => output.push(d.toString()));
  child.stderr!.on("data", (d: Buffer) => output.push(d.toString()));
  const exited = new Promise<number | null>((resolve) =>
    child.once("exit", (code) => resolve(code)),
  );
  return { child, output, exited };
}

/** Resolves once `ready()` holds; rejects if the process exits first or the deadline passes. */
async function untilUp(name: string, s: Service, ready: () => Promise<boolean>): Promise<void> {
  const deadline = Date.now() + START_DEADLINE_MS;
  let exitCode: number | null | undefined;
  void s.exited.then((code) => {
    exitCode = code;
  });
  for (;;) {
    if (exitCode !== undefined) {
      throw new Error(`${name} exited with ${exitCode} before it was up:\n${s.output.join("")}`);
    }
    if (await ready().catch(() => false)) return;
    if (Date.now() > deadline) throw new Error(`${name} was not up in time:\n${s.output.join("")}`);
    await new Promise((r) => setTimeout(r, 200));
  }
}

async function stop(s: Service): Promise<void> {
  if (s.child.exitCode !== null || s.child.signalCode !== null) return;
  s.child.kill("SIGTERM");
  const timer = setTimeout(() => s.child.kill("SIGKILL"), 15_000);
  await s.exited;
  clearTimeout(timer);
}

afterAll(async () => {
  for (const child of children) if (child.exitCode === null) child.kill("SIGKILL");
  await dropSchema(schema);
  const redis = new Redis(TEST_REDIS_URL);
  await deleteKeysWithPrefix(redis, prefix);
  redis.disconnect();
});

describe("services started together on an empty schema", () => {
  it(`${RELAYS} relays and ${AGGREGATORS} aggregators all come up and share one migrated schema`, async () => {
    const admin = new pg.Client({ connectionString: TEST_DATABASE_URL });
    await admin.connect();
    try {
      const before = await admin.query("SELECT 1 FROM pg_namespace WHERE nspname = $1", [schema]);
      expect(before.rowCount).toBe(0);

      const ports = await Promise.all(Array.from({ length: RELAYS }, () => freePort()));
      const relays = ports.map((port) =>
        spawnService("apps/relay/src/server.ts", {
          PORT: String(port),
          HOST: "127.0.0.1",
          RATE_LIMIT_PER_IP: "0",
        }),
      );
      const aggregators = Array.from({ length: AGGREGATORS }, () =>
        spawnService("apps/aggregator/src/server.ts", {}),
      );

      await Promise.all([
        ...relays.map((s, i) =>
          untilUp(`relay ${i}`, s, async () => {
            const res = await fetch(`http://127.0.0.1:${ports[i]}/readyz`);
            return res.status === 200;
          }),
        ),
        ...aggregators.map((s, i) =>
          untilUp(`aggregator ${i}`, s, async () =>
            s.output.join("").includes("aggregator running"),
          ),
        ),
      ]);

      // Every migration was applied once, and no failed attempt was left behind.
      const files = (await import("node:fs"))
        .readdirSync(path.join(repoRoot, "prisma/migrations"), { withFileTypes: true })
        .filter((e) => e.isDirectory()).length;
      const rows = await admin.query<{ migration_name: string; finished_at: Date | null }>(
        `SELECT migration_name, finished_at FROM "${schema}"."_prisma_migrations"`,
      );
      expect(rows.rowCount).toBe(files);
      expect(new Set(rows.rows.map((r) => r.migration_name)).size).toBe(files);
      expect(rows.rows.every((r) => r.finished_at !== null)).toBe(true);

      // All still running, and none was left holding the migration lock.
      for (const s of [...relays, ...aggregators]) expect(s.child.exitCode).toBeNull();
      const key = migrationLockKey(schema).toString();
      const free = await admin.query<{ locked: boolean }>(
        "SELECT pg_try_advisory_lock($1::bigint) AS locked",
        [key],
      );
      expect(free.rows[0]?.locked).toBe(true);
      await admin.query("SELECT pg_advisory_unlock($1::bigint)", [key]);

      await Promise.all([...relays, ...aggregators].map(stop));
    } finally {
      await admin.end();
    }
  }, 240_000);
});
