// Prisma's own CLI and the services' migrator agree on a `?schema=` URL: after a service has
// migrated the schema, `prisma migrate status` on the same URL finds every migration applied
// (it reads the same `_prisma_migrations` table, in that schema).
import { spawn } from "node:child_process";
import { randomBytes } from "node:crypto";
import { readdirSync } from "node:fs";
import path from "node:path";
import { fileURLToPath } from "node:url";
import { openDatabase } from "@prover-boost/db";
import { afterAll, describe, expect, it } from "vitest";
import { TEST_DATABASE_URL } from "./harness.ts";
import { dropSchema } from "./support/databases.ts";

const repoRoot = path.resolve(path.dirname(fileURLToPath(import.meta.url)), "..");
const migrated = `t_migst_${randomBytes(5).toString("hex")}`;
const empty = `t_migst_${randomBytes(5).toString("hex")}`;
const deployed = `t_migst_${randomBytes(5).toString("hex")}`;

function urlFor(schema: string): string {
  const u = new URL(TEST_DATABASE_URL);
  u.searchParams.set("schema", schema);
  return u.toString();
}

function migrateStatus(url: string) {
  return prismaMigrate("status", url);
}

function prismaMigrate(
  command: "status" | "deploy",
  url: string,
): Promise<{ code: number | null; out: string }> {
  const child = spawn(
    process.execPath,
    [path.join(repoRoot, "node_modules/prisma/build/index.js"), "migrate", command],
    {
      cwd: repoRoot,
      env: { ...process.env, DATABASE_URL: url },
      stdio: ["ignore", "pipe", "pipe"],
    },
  );
  let out = "";
  child.stdout.on("data", (d: Buffer) => {
    out += d.toString();
  });
  child.stderr.on("data", (d: Buffer) => {
    out += d.toString();
  });
  return new Promise((resolve) => child.on("exit", (code) => resolve({ code, out })));
}

afterAll(async () => {
  await dropSchema(migrated);
  await dropSchema(empty);
  await dropSchema(deployed);
});

describe("prisma migrate status on a ?schema= URL", () => {
  it("reports up to date after the service's migrator ran on that schema", async () => {
    const db = await openDatabase({ databaseUrl: urlFor(migrated) });
    expect(db.schema).toBe(migrated);
    await db.close();
    const status = await migrateStatus(urlFor(migrated));
    expect(status.out).toContain(`schema "${migrated}"`);
    expect(status.out).toContain("Database schema is up to date");
    expect(status.code).toBe(0);
  });

  it("reports pending migrations on a schema the migrator has not touched", async () => {
    const status = await migrateStatus(urlFor(empty));
    expect(status.out).toContain("not yet been applied");
    expect(status.code).not.toBe(0);
  });

  it("prisma migrate deploy on a ?schema= URL leaves the migrator nothing to do", async () => {
    const deploy = await prismaMigrate("deploy", urlFor(deployed));
    expect(deploy.out).toContain("All migrations have been successfully applied");
    expect(deploy.code).toBe(0);
    // Same table, same checksums: the service opens it without applying anything again.
    const db = await openDatabase({ databaseUrl: urlFor(deployed) });
    try {
      const dirs = readdirSync(path.join(repoRoot, "prisma/migrations"), { withFileTypes: true });
      const rows = await db.sql.query<{ n: number; finished: number }>(
        `SELECT count(*)::int AS n, count(finished_at)::int AS finished FROM "_prisma_migrations"`,
      );
      const count = dirs.filter((d) => d.isDirectory()).length;
      expect(rows[0]).toEqual({ n: count, finished: count });
    } finally {
      await db.close();
    }
  });
});
