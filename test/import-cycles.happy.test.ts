// No module of apps/ or packages/ may import itself back through others: a cycle makes the load
// order decide what is defined, and hides which of two modules owns what. Type-only imports count
// too (they tie the two files' designs together the same way). Workspace packages are followed
// through their package.json "exports"; generated code is not ours and is skipped.
import { existsSync, readdirSync, readFileSync, statSync } from "node:fs";
import { dirname, join, relative, resolve } from "node:path";
import { fileURLToPath } from "node:url";
import { describe, expect, it } from "vitest";

const root = resolve(dirname(fileURLToPath(import.meta.url)), "..");

function sourceFiles(dir: string): string[] {
  return readdirSync(dir).flatMap((name) => {
    const path = join(dir, name);
    if (statSync(path).isDirectory()) return name === "generated" ? [] : sourceFiles(path);
    return /\.ts$/.test(name) && !/\.test\.ts$/.test(name) ? [path] : [];
  });
}

function workspaceEntries(): Map<string, string> {
  const entries = new Map<string, string>();
  for (const group of ["packages", "apps"]) {
    for (const name of readdirSync(join(root, group))) {
      const manifest = join(root, group, name, "package.json");
      if (!existsSync(manifest)) continue;
      const pkg = JSON.parse(readFileSync(manifest, "utf8"));
      const entry = typeof pkg.exports === "string" ? pkg.exports : pkg.exports?.["."];
      if (entry) entries.set(pkg.name, resolve(root, group, name, entry));
    }
  }
  return entries;
}

/** Import graph: file -> files it imports (relative or workspace specifiers). */
function importGraph(files: string[], entries: Map<string, string>): Map<string, string[]> {
  const known = new Set(files);
  const graph = new Map<string, string[]>();
  const specifier =
    /(?:^|[\s;])(?:import|export)\b[^'"]*?from\s*["']([^"']+)["']|import\s*\(?\s*["']([^"']+)["']/gm;
  for (const file of files) {
    const text = readFileSync(file, "utf8").replace(/^\s*\/\/.*$/gm, "");
    const deps: string[] = [];
    for (const m of text.matchAll(specifier)) {
      const spec = (m[1] ?? m[2])!;
      const target = spec.startsWith(".") ? resolve(dirname(file), spec) : entries.get(spec);
      if (target && known.has(target)) deps.push(target);
    }
    graph.set(file, deps);
  }
  return graph;
}

/** Every cycle found by a depth-first walk (each reported once, as the path that closes it). */
function cyclesOf(graph: Map<string, string[]>): string[][] {
  const state = new Map<string, "open" | "done">();
  const stack: string[] = [];
  const cycles: string[][] = [];
  const visit = (node: string) => {
    state.set(node, "open");
    stack.push(node);
    for (const next of graph.get(node) ?? []) {
      if (state.get(next) === "open") cycles.push([...stack.slice(stack.indexOf(next)), next]);
      else if (!state.has(next)) visit(next);
    }
    stack.pop();
    state.set(node, "done");
  };
  for (const node of graph.keys()) if (!state.has(node)) visit(node);
  return cycles;
}

describe("import graph", () => {
  it("has no cycles in apps/ and packages/", () => {
    const files = ["packages", "apps"].flatMap((group) =>
      readdirSync(join(root, group))
        .map((name) => join(root, group, name, "src"))
        .filter(existsSync)
        .flatMap(sourceFiles),
    );
    const graph = importGraph(files, workspaceEntries());
    expect(graph.size).toBeGreaterThan(50);
    const cycles = cyclesOf(graph).map((c) => c.map((f) => relative(root, f)).join(" -> "));
    expect(cycles).toEqual([]);
  });

  it("finds a cycle when there is one", () => {
    const graph = new Map([
      ["a", ["b"]],
      ["b", ["c"]],
      ["c", ["a"]],
      ["d", ["a"]],
    ]);
    expect(cyclesOf(graph)).toEqual([["a", "b", "c", "a"]]);
    expect(
      cyclesOf(
        new Map([
          ["a", ["b"]],
          ["b", []],
        ]),
      ),
    ).toEqual([]);
  });
});
