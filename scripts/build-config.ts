// The tsdown settings every workspace builds with (each workspace's tsdown.config.ts calls one
// of these). Output: ES modules for Node 20 in the workspace's dist/, with .d.ts types.
//
// - A package (packages/*) is a library: its own code only; every import of another package,
//   workspace or registry, stays an import.
// - An app (apps/*) is what `node` runs: the workspace packages it uses are bundled into its
//   dist/ (their package.json `exports` point at TypeScript sources, which Node does not run),
//   while registry packages stay imports resolved from node_modules. Files the packages read at
//   run time (circuits, setup points, migrations) are found from each package's root, not
//   copied. An app that bundles the proof pool also emits the pool's thread entry,
//   dist/pool-thread.js, beside the chunk that starts the pool.
import { isAbsolute } from "node:path";
import type { UserConfig } from "tsdown";

const workspace = /^@prover-boost\//;

/** A bare import of a registry package (not relative, not absolute, not a workspace package). */
function registryImport(id: string): boolean {
  if (id.startsWith(".") || isAbsolute(id) || id.startsWith("\0")) return false;
  return !workspace.test(id);
}

const common = {
  format: "esm",
  platform: "node",
  target: "node20",
  // BUILD_OUT_DIR: another directory of the workspace (the build test builds beside dist/).
  outDir: process.env.BUILD_OUT_DIR || "dist",
  clean: true,
  fixedExtension: false,
  sourcemap: true,
  dts: true,
  logLevel: "warn",
} satisfies UserConfig;

/** A library package: entry name → source file; `BUILD_DTS=0` skips the types. */
export function packageBuild(entry: Record<string, string>): UserConfig {
  return {
    ...common,
    entry,
    dts: process.env.BUILD_DTS !== "0",
    deps: { neverBundle: (id: string) => registryImport(id) || workspace.test(id) },
  };
}

/**
 * An app: its entries, with the workspace packages bundled in; `BUILD_DTS=0` skips the types.
 * Two builds: the JavaScript (workspace packages bundled), then the types alone, which keep
 * importing the workspace packages (their own types) rather than inlining them.
 */
export function appBuild(
  entry: Record<string, string>,
  opts: { proofPool?: boolean } = {},
): UserConfig[] {
  const entries = { ...entry };
  if (opts.proofPool) entries["pool-thread"] = "../../packages/proofs/src/pool-thread.ts";
  const js: UserConfig = {
    ...common,
    entry: entries,
    dts: false,
    deps: { neverBundle: registryImport, alwaysBundle: workspace },
  };
  if (process.env.BUILD_DTS === "0") return [js];
  const types: UserConfig = {
    ...common,
    entry,
    clean: false,
    sourcemap: false,
    dts: { emitDtsOnly: true },
    deps: { neverBundle: (id: string) => registryImport(id) || workspace.test(id) },
  };
  return [js, types];
}
