// The root manifest carries what a fresh clone needs: `packageManager` (turbo refuses to resolve
// the workspace without it, so `npm run build` fails) and a `postinstall` that generates the
// Prisma client, so any service entry runs right after `npm ci`.
import { readFileSync } from "node:fs";
import path from "node:path";
import { fileURLToPath } from "node:url";
import { describe, expect, it } from "vitest";

const repoRoot = path.resolve(path.dirname(fileURLToPath(import.meta.url)), "..");
const manifest = JSON.parse(readFileSync(path.join(repoRoot, "package.json"), "utf8")) as {
  packageManager?: string;
  scripts?: Record<string, string>;
};

describe("root package.json", () => {
  it("names its package manager with an exact npm version", () => {
    expect(manifest.packageManager).toMatch(/^npm@\d+\.\d+\.\d+$/);
  });

  it("generates the Prisma client at install", () => {
    expect(manifest.scripts?.postinstall).toContain("scripts/prisma-generate.mjs");
  });
});
