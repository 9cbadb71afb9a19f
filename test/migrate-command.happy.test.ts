// `prover-boost migrate` (npm run db:migrate) and a relay started at the same moment on an empty
// Postgres schema: the command migrates with the services' own migrator under the schema's
// advisory lock, so whichever comes second waits and then finds nothing to do. Both succeed, and
// every migration is recorded once.
import { type ChildProcess, spawn } from "node:child_process";
import { randomBytes } from "node:crypto";
import { once } from "node:events";
import { readdirSync } from "node:fs";
import path from "node:path";
import { deleteKeysWithPrefix } from "@prover-boost/queue";
import { Redis } from "ioredis";
import pg from "pg";
import { afterAll, describe, expect, it } from "vitest";
import { eventually, TEST_DATABASE_URL, TEST_REDIS_URL } from "./harness.ts";
import { dropSchema } from "./support/databases.ts";
import { exitWithin, outputOf } from "./support/exit.ts";
import { jsonLines, repoRoot, runCli } from "./support/operator-cli.ts";
import { freePort } from "./support/ports.ts";
import { relayProcessEnv } from "./support/relay-processes.ts";

const schema = `t_migcmd_${randomBytes(5).toString("hex")}`;
const prefix = `pb-migcmd-${randomBytes(4).toString("hex")}`;
let relay: ChildProcess | undefined;

function schemaUrl(): string {
  const u = new URL(TEST_DATABASE_URL);
  u.searchParams.set("schema", schema);
  return u.toString();
}

afterAll(async () => {
  if (relay && relay.exitCode === null) relay.kill("SIGKILL");
  await dropSchema(schema);
  const redis = new Redis(TEST_REDIS_URL);
  await deleteKeysWithPrefix(redis, prefix);
  redis.disconnect();
});

describe("prover-boost migrate", { timeout: 240_000 }, () => {
  it("and a relay starting at the same time on an empty schema both succeed", async () => {
    const port = await freePort();
    relay = spawn(
      process.execPath,
      ["--import", "tsx", path.join(repoRoot, "apps/relay/src/server.ts")],
      {
        cwd: repoRoot,
        env: {
          ...process.env,
          ...relayProcessEnv(schema, prefix),
          DATABASE_URL: schemaUrl(),
          PORT: String(port),
        },
        stdio: ["ignore", "pipe", "pipe"],
      },
    );
    const output = outputOf(relay);
    const exited = once(relay, "exit");
    const migrated = runCli(["migrate"], { PB_DATABASE_URL: schemaUrl() });

    const ready = eventually(async () => {
      if (relay!.exitCode !== null) throw new Error(`the relay exited:\n${output()}`);
      const res = await fetch(`http://127.0.0.1:${port}/readyz`).catch(() => null);
      return res?.status === 200;
    }, 180_000);
    const [cli] = await Promise.all([migrated, ready]);

    expect(cli.stderr).toBe("");
    expect(cli.code).toBe(0);
    const files = readdirSync(path.join(repoRoot, "prisma/migrations"), { withFileTypes: true })
      .filter((e) => e.isDirectory())
      .map((e) => e.name)
      .sort();
    expect(jsonLines(cli.stdout)).toEqual([
      { database: "postgres", schema, migrations: files.length, latest: files.at(-1) },
    ]);
    const admin = new pg.Client({ connectionString: TEST_DATABASE_URL });
    await admin.connect();
    try {
      const rows = await admin.query<{ migration_name: string }>(
        `SELECT migration_name FROM "${schema}"."_prisma_migrations"
         WHERE finished_at IS NOT NULL ORDER BY migration_name`,
      );
      expect(rows.rows.map((r) => r.migration_name)).toEqual(files);
    } finally {
      await admin.end();
    }

    relay.kill("SIGTERM");
    const [code] = await exitWithin(exited, "the relay");
    expect(code).toBe(0);
  });

  it("refuses a bad configuration with exit code 2", async () => {
    const cli = await runCli(["migrate"], { DATABASE_MIGRATE_LOCK_TIMEOUT_MS: "not a number" });
    expect(cli.code).toBe(2);
    expect(cli.stderr).toMatch(/DATABASE_MIGRATE_LOCK_TIMEOUT_MS/);
  });
});
