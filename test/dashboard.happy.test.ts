// The Grafana dashboard in deploy/grafana cannot silently rot: it is valid JSON, every panel
// queries something, and every metric its PromQL names is one the relay, the aggregator or the
// worker agent registers (a histogram's _bucket/_sum/_count series by their histogram), with the
// labels its `by (...)` clauses group on.
import { readFileSync } from "node:fs";
import path from "node:path";
import { fileURLToPath } from "node:url";
import { AggregatorMetrics } from "@prover-boost/aggregator";
import { RelayMetrics } from "@prover-boost/relay";
import { workerMetrics } from "@prover-boost/worker";
import { describe, expect, it } from "vitest";

const root = path.join(path.dirname(fileURLToPath(import.meta.url)), "..");
const file = path.join(root, "deploy/grafana/prover-boost.json");

interface Panel {
  id: number;
  type: string;
  title: string;
  targets?: { expr: string; refId: string }[];
}

/** Every registered metric family: name -> its type and label names. */
async function families(): Promise<Map<string, { type: string; labels: Set<string> }>> {
  const registries = [
    new RelayMetrics().registry,
    new AggregatorMetrics().registry,
    workerMetrics("sim").registry,
  ];
  const out = new Map<string, { type: string; labels: Set<string> }>();
  for (const registry of registries) {
    for (const m of registry.getMetricsAsArray()) {
      const labels = new Set<string>((m as unknown as { labelNames?: string[] }).labelNames ?? []);
      const type = String((m as unknown as { type: string }).type);
      out.set(m.name, { type, labels: new Set([...(out.get(m.name)?.labels ?? []), ...labels]) });
    }
  }
  return out;
}

/** The family a series name belongs to, or undefined. */
function familyOf(
  name: string,
  known: Map<string, { type: string; labels: Set<string> }>,
): string | undefined {
  if (known.has(name)) return name;
  const m = /^(.*)_(bucket|sum|count)$/.exec(name);
  if (m && known.get(m[1]!)?.type === "histogram") return m[1];
  return undefined;
}

describe("the Grafana dashboard", () => {
  const dashboard = JSON.parse(readFileSync(file, "utf8")) as {
    title: string;
    uid: string;
    panels: Panel[];
  };
  const graphs = dashboard.panels.filter((p) => p.type !== "row");

  it("is a dashboard with unique panel ids, each graph querying something", () => {
    expect(dashboard.title).toBe("prover-boost");
    expect(graphs.length).toBeGreaterThan(10);
    const ids = dashboard.panels.map((p) => p.id);
    expect(new Set(ids).size).toBe(ids.length);
    for (const p of graphs) {
      expect(p.targets?.length, p.title).toBeGreaterThan(0);
      for (const t of p.targets!) expect(t.expr, p.title).toMatch(/prover_boost_/);
    }
  });

  it("names only metrics the services register, grouping by labels they have", async () => {
    const known = await families();
    const used = new Set<string>();
    for (const p of graphs) {
      for (const { expr } of p.targets!) {
        const names = [...expr.matchAll(/\bprover_boost_[a-z0-9_]+/g)].map((m) => m[0]);
        const metricFamilies = names.map((n) => {
          const family = familyOf(n, known);
          expect(family, `${p.title}: ${n} is not registered`).toBeDefined();
          used.add(family!);
          return family!;
        });
        // Labels grouped on (besides a histogram's le) exist on every metric of the expression.
        for (const m of expr.matchAll(/\bby \(([^)]*)\)/g)) {
          for (const label of m[1]!.split(",").map((l) => l.trim())) {
            if (label === "le") continue;
            for (const f of metricFamilies) {
              expect(
                known.get(f)!.labels.has(label),
                `${p.title}: ${f} has no label ${label}`,
              ).toBe(true);
            }
          }
        }
      }
    }
    // Every market metric is on the dashboard (process metrics need not all be).
    const market = [...known.keys()].filter(
      (n) => !/^prover_boost_(relay|aggregator|worker)_(process|nodejs)_/.test(n),
    );
    expect(market.filter((n) => !used.has(n))).toEqual([]);
  });

  it("shows queue depth per job type, not only per queue", () => {
    const exprs = graphs.flatMap((p) => p.targets!.map((t) => t.expr));
    const depth = exprs.filter((e) => e.includes("prover_boost_queue_jobs"));
    expect(depth.length).toBeGreaterThan(0);
    for (const e of depth) expect(e).toMatch(/\bby \((?:[^)]*,\s*)?type\b/);
  });
});
