// Generates the Prisma client (TypeScript, no engine binaries) from prisma/schema.prisma.
// The CLI reads DATABASE_URL from the schema's datasource even though generate never connects,
// so a placeholder is supplied when it is unset. Skipped when the schema has not changed.
import { spawnSync } from "node:child_process";
import { createHash } from "node:crypto";
import { existsSync, readFileSync, writeFileSync } from "node:fs";

const schema = readFileSync("prisma/schema.prisma");
const stamp = "packages/db/src/generated/.schema-hash";
const hash = createHash("sha256").update(schema).digest("hex");
if (existsSync(stamp) && readFileSync(stamp, "utf8") === hash) process.exit(0);
const res = spawnSync(process.execPath, ["node_modules/prisma/build/index.js", "generate"], {
  stdio: ["ignore", "ignore", "inherit"],
  env: {
    ...process.env,
    DATABASE_URL: process.env.DATABASE_URL || "postgresql://localhost/unused",
  },
});
if (res.status !== 0) process.exit(res.status ?? 1);
writeFileSync(stamp, hash);
