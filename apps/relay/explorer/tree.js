// A block's proof tree as one SVG, built once: leaves left to right in tree order, each parent
// centred over its children, the root on top. Later changes only touch the changed nodes (class,
// data-state, title, link), batched per animation frame, so a 2,047-node tree stays cheap to keep
// live.
import { duration, el, short, svg } from "./dom.js";

export const states = ["queued", "leased", "proven", "lapsed", "failed"];

export class TreeView {
  /**
   * @param nodes the /tree response's nodes
   * @param opts { block, provingStartedAt }
   */
  constructor(nodes, opts) {
    const started = performance.now();
    this.block = opts.block;
    this.provingStartedAt = opts.provingStartedAt ?? null;
    this.data = new Map(nodes.map((n) => [n.id, { ...n, sawLapse: false }]));
    this.views = new Map();
    this.pending = new Map();
    this.frame = 0;
    this.parentOf = new Map();
    for (const n of nodes) for (const c of n.children) this.parentOf.set(c, n.id);
    const root = nodes.find((n) => n.level === 0) ?? nodes[0];
    // pos: the node's centre in leaf units; span: the first and last leaf under it.
    const pos = new Map();
    const span = new Map();
    let leaves = 0;
    let depth = 0;
    // Iterative post-order walk (deep wonky trees stay off the call stack).
    if (root) {
      const stack = [[root.id, false]];
      while (stack.length > 0) {
        const [id, visited] = stack.pop();
        const n = this.data.get(id);
        if (!n) continue;
        depth = Math.max(depth, n.level);
        const kids = n.children.filter((c) => this.data.has(c));
        if (kids.length === 0) {
          span.set(id, [leaves, leaves]);
          pos.set(id, leaves++);
        } else if (visited) {
          const xs = kids.map((c) => pos.get(c));
          pos.set(id, (Math.min(...xs) + Math.max(...xs)) / 2);
          span.set(id, [span.get(kids[0])[0], span.get(kids[kids.length - 1])[1]]);
        } else {
          stack.push([id, true]);
          for (let i = kids.length - 1; i >= 0; i--) stack.push([kids[i], false]);
        }
      }
    }
    this.leaves = leaves;
    // Up to 128 leaves: nodes and edges. Wider trees: an icicle, each node a bar as wide as the
    // leaves under it, so every node stays visible when the tree is fitted to the page.
    this.layout = leaves > 128 ? "icicle" : "nodes";
    const r = 8;
    const dx = this.layout === "icicle" ? 6 : 2 * r + 4;
    const pad = this.layout === "icicle" ? 2 : r + 4;
    const width = Math.max(1, leaves) * dx + 2 * pad;
    const dy = this.layout === "icicle" ? Math.max(16, (width * 0.3) / (depth + 1)) : 3.2 * r;
    const height = this.layout === "icicle" ? (depth + 1) * dy + 2 * pad : depth * dy + 2 * pad;
    this.svg = svg("svg", {
      class: `tree ${this.layout}`,
      viewBox: `0 0 ${width} ${height}`,
      "data-nodes": String(this.data.size),
      "data-block": String(this.block),
      role: "img",
      "aria-label": `proof tree of block ${this.block}`,
    });
    this.naturalWidth = width;
    // A small tree is not blown up past three times its natural size.
    if (this.layout === "nodes") this.svg.style.maxWidth = `${Math.max(360, width * 3)}px`;
    const at = (id) => ({ x: pad + r + pos.get(id) * dx, y: pad + this.data.get(id).level * dy });
    if (this.layout === "nodes") {
      let d = "";
      for (const n of this.data.values()) {
        if (!pos.has(n.id)) continue;
        const p = at(n.id);
        for (const c of n.children) {
          if (!pos.has(c)) continue;
          const q = at(c);
          d += `M${p.x} ${p.y}L${q.x} ${q.y}`;
        }
      }
      this.svg.append(svg("path", { class: "edges", d }));
    }
    const group = svg("g", { class: "nodes" });
    for (const n of this.data.values()) {
      if (!pos.has(n.id)) continue;
      const link = svg("a", { "data-id": n.id });
      const title = svg("title");
      if (this.layout === "nodes") {
        const p = at(n.id);
        link.append(svg("circle", { cx: p.x, cy: p.y, r }), title);
      } else {
        const [first, last] = span.get(n.id);
        const shape = {
          x: pad + first * dx,
          y: pad + n.level * dy,
          width: Math.max(1, (last - first + 1) * dx - 1),
          height: Math.max(1, dy - 2),
        };
        link.append(svg("rect", shape), title);
      }
      group.append(link);
      this.views.set(n.id, { link, title, state: null });
      this.paint(n.id);
    }
    this.svg.append(group);
    this.legend = el("div", { class: "legend" });
    this.paintLegend();
    this.buildMs = performance.now() - started;
    this.svg.setAttribute("data-build-ms", this.buildMs.toFixed(1));
  }

  stateOf(n) {
    if (n.status === "queued" && (n.lapses > 0 || n.sawLapse)) return "lapsed";
    return n.status;
  }

  /** When the node could start: its last child's proof, or (a leaf) the start of proving. */
  readyAt(n) {
    if (n.children.length === 0) return this.provingStartedAt;
    let latest = null;
    for (const c of n.children) {
      const t = this.data.get(c)?.provenAt;
      if (t === null || t === undefined) return null;
      latest = latest === null ? t : Math.max(latest, t);
    }
    return latest;
  }

  paint(id) {
    const n = this.data.get(id);
    const v = this.views.get(id);
    if (!n || !v) return;
    const state = this.stateOf(n);
    if (v.state !== state) {
      v.link.setAttribute("class", `s-${state}`);
      v.link.setAttribute("data-state", state);
      v.state = state;
    }
    const lines = [`${n.type} ${n.level}:${n.index} (${n.id}): ${state}`];
    if ((n.status === "leased" || n.status === "proven") && n.operator) {
      lines.push(
        `${n.status === "proven" ? "proved" : "held"} by ${short(n.operator)}${n.worker ? ` / ${n.worker}` : ""}`,
      );
    }
    if (n.status === "proven" && n.provenAt) {
      const ready = this.readyAt(n);
      if (ready !== null) lines.push(`took ${duration(n.provenAt - ready)} from ready to proven`);
    }
    if (n.lapses > 0) lines.push(`${n.lapses} lapsed lease${n.lapses === 1 ? "" : "s"}`);
    if (n.status === "proven") {
      lines.push("click for its proof");
      v.link.setAttribute("href", `/v1/blocks/${this.block}/proofs/${encodeURIComponent(n.id)}`);
      v.link.setAttribute("target", "_blank");
    }
    v.title.textContent = lines.join("\n");
  }

  /** Queues a change of a node (fields of the /tree node); applied on the next frame. */
  update(id, patch) {
    const n = this.data.get(id);
    if (!n) return;
    if (patch.status === "queued" && n.status === "leased") patch = { ...patch, sawLapse: true };
    const prev = this.pending.get(id);
    this.pending.set(id, prev ? { ...prev, ...patch } : patch);
    if (!this.frame) this.frame = requestAnimationFrame(() => this.flush());
  }

  /** Applies a fresh /tree response without rebuilding (new times, operators, lapses). */
  refresh(nodes) {
    for (const n of nodes) {
      const cur = this.data.get(n.id);
      if (!cur) continue;
      if (
        cur.status !== n.status ||
        cur.provenAt !== n.provenAt ||
        cur.lapses !== n.lapses ||
        cur.operator !== n.operator ||
        cur.worker !== n.worker
      ) {
        this.update(n.id, {
          status: n.status,
          provenAt: n.provenAt,
          lapses: n.lapses,
          operator: n.operator,
          worker: n.worker,
        });
      }
    }
  }

  flush() {
    this.frame = 0;
    const touched = new Set();
    for (const [id, patch] of this.pending) {
      Object.assign(this.data.get(id), patch);
      touched.add(id);
      // A parent's time depends on its children's proofs.
      const parent = this.parentOf.get(id);
      if (parent && patch.provenAt !== undefined) touched.add(parent);
    }
    this.pending.clear();
    for (const id of touched) this.paint(id);
    this.paintLegend();
  }

  counts() {
    const out = Object.fromEntries(states.map((s) => [s, 0]));
    for (const n of this.data.values()) out[this.stateOf(n)]++;
    return out;
  }

  paintLegend() {
    const c = this.counts();
    this.legend.replaceChildren(
      ...states.map((s) => el("span", { class: `s-${s}`, "data-count": s }, `${s} ${c[s]}`)),
    );
    this.svg.setAttribute("data-proven", String(c.proven));
  }
}
