// The explorer: hash routes over the relay's public API. #/ auctions, #/block/N, #/operators,

// #/operator/0x.., #/payouts, #/penalties. Lists refresh by a gentle poll; a block page follows
// the relay's server-sent events and redraws only the nodes that changed.
import { api, follow } from "./api.js";
import {
  ago,
  blockLink,
  bps,
  card,
  countdown,
  duration,
  el,
  eth,
  isAddress,
  mount,
  operatorLink,
  short,
  table,
} from "./dom.js";
import { TreeView } from "./tree.js";

const LIST_POLL_MS = 3000;
/** A block page with a live stream reads its whole tree again at least this often. */
const TREE_LIVE_MS = 30_000;
/** ...or once the block's proven count has stayed ahead of the tree's this long. */
const TREE_BEHIND_MS = 5000;
const PAGE_SIZE = 25;

/** Rows per page: `?limit=` (1 to 100), else PAGE_SIZE. */
function pageSize(query) {
  const v = query.get("limit");
  return v && /^\d{1,3}$/.test(v) && Number(v) >= 1 && Number(v) <= 100 ? Number(v) : PAGE_SIZE;
}

/** What the current page started (timers, streams, fetches): stopped on the next route. */
let page = null;
function newPage() {
  page?.abort.abort();
  for (const t of page?.timers ?? []) clearInterval(t);
  page = { abort: new AbortController(), timers: [] };
  return page;
}
const every = (p, ms, fn) => p.timers.push(setInterval(fn, ms));

let infoPromise = null;
const relayInfo = () => (infoPromise ??= api("/v1/info").catch(() => null));

function showError(err) {
  return el("p", { class: "error" }, `${err.code ?? "ERROR"}: ${err.message ?? String(err)}`);
}

function setActive(name) {
  for (const a of document.querySelectorAll("nav a[data-nav]")) {
    a.classList.toggle("active", a.dataset.nav === name);
  }
}

// ---- Auctions ----

const numeric = new Set(["txs", "bids", "fee", "bond", "reward"]);

function auctionRow(a, pricing) {
  const closes =
    a.status === "open"
      ? el("span", { "data-closes": a.biddingClosesAt }, countdown(a.biddingClosesAt))
      : el("span", { class: "muted" }, a.closedAt ? `closed ${ago(a.closedAt)}` : "closed");
  const w = a.winner?.quote;
  const settled =
    a.settlementFeeBps !== null && w && a.settlementFeeBps !== w.basisPointFee
      ? ` → ${bps(a.settlementFeeBps)}`
      : "";
  return el(
    "tr",
    { "data-block": a.blockNumber, "data-status": a.status },
    el("td", {}, blockLink(a.blockNumber)),
    el("td", {}, el("span", { class: `pill ${a.status}` }, a.status)),
    el("td", { class: "num" }, a.txCount),
    el("td", { class: "num bids" }, a.bidCount),
    el("td", {}, closes),
    el("td", { class: "winner" }, w ? operatorLink(w.prover) : el("span", { class: "muted" }, "—")),
    el("td", { class: "num" }, w ? `${bps(w.basisPointFee)}${settled}` : "—"),
    el("td", { class: "num" }, w ? eth(w.bondAmount) : "—"),
    el("td", { class: "num" }, eth(a.blockReward)),
    el("td", {}, w ? (pricing === "second" ? "second price" : "first price") : "—"),
  );
}

async function auctionsPage(p, query) {
  setActive("auctions");
  const body = el("tbody");
  const status = ["open", "committed", "unclaimed"].includes(query.get("status"))
    ? query.get("status")
    : null;
  const pager = new Pager(p, async (cursor) => {
    const qs = new URLSearchParams({ limit: String(pageSize(query)) });
    if (status) qs.set("status", status);
    if (cursor) qs.set("cursor", cursor);
    const [res, info] = await Promise.all([
      api(`/v1/data/auctions?${qs}`, p.abort.signal),
      relayInfo(),
    ]);
    body.replaceChildren(...res.items.map((a) => auctionRow(a, info?.pricing)));
    if (res.items.length === 0)
      body.append(el("tr", {}, el("td", { colspan: 10, class: "muted" }, "no auctions yet")));
    return res.nextCursor;
  });
  const filters = el(
    "p",
    {},
    ...[null, "open", "committed", "unclaimed"].map((s) =>
      el(
        "a",
        { href: s ? `#/?status=${s}` : "#/", class: s === status ? "pill open" : "pill" },
        s ?? "all",
      ),
    ),
  );
  mount(
    el("h1", {}, "Auctions"),
    filters,
    el(
      "table",
      { id: "auctions" },
      el(
        "thead",
        {},
        el(
          "tr",
          {},
          ...[
            "block",
            "status",
            "txs",
            "bids",
            "bidding",
            "winner",
            "fee",
            "bond",
            "reward",
            "pricing",
          ].map((h) => el("th", { class: numeric.has(h) ? "num" : undefined }, h)),
        ),
      ),
      body,
    ),
    pager.element,
  );
  await pager.load();
  every(p, 1000, () => {
    for (const span of document.querySelectorAll("[data-closes]"))
      span.textContent = countdown(span.dataset.closes);
  });
  every(p, LIST_POLL_MS, () => pager.reload());
}

/** Cursor paging: the cursors of the pages before this one, so "newer" goes back. */
class Pager {
  constructor(p, load) {
    this.p = p;
    this.loader = load;
    this.cursors = [null];
    this.next = null;
    this.prevButton = el("button", { onclick: () => this.go(-1) }, "← newer");
    this.nextButton = el("button", { onclick: () => this.go(1) }, "older →");
    this.label = el("span", { class: "muted" });
    this.element = el("div", { class: "pager" }, this.prevButton, this.nextButton, this.label);
  }
  async load() {
    try {
      this.next = await this.loader(this.cursors[this.cursors.length - 1]);
    } catch (err) {
      if (this.p.abort.signal.aborted) return;
      this.label.replaceChildren(showError(err));
      return;
    }
    this.prevButton.disabled = this.cursors.length === 1;
    this.nextButton.disabled = !this.next;
    this.label.textContent = `page ${this.cursors.length}`;
  }
  /** Polls only the first page: later pages hold still while being read. */
  reload() {
    if (this.cursors.length === 1) return this.load();
  }
  go(step) {
    if (step > 0 && this.next) this.cursors.push(this.next);
    if (step < 0 && this.cursors.length > 1) this.cursors.pop();
    return this.load();
  }
}

// ---- Block ----

function timeline(stages) {
  const entries = Object.entries(stages ?? {}).sort((a, b) => a[1] - b[1]);
  if (entries.length === 0) return el("p", { class: "muted" }, "no stage yet");
  const t0 = entries[0][1];
  return el(
    "div",
    { class: "timeline", id: "timeline" },
    ...entries.map(([s, at]) =>
      el(
        "div",
        { class: "step", "data-stage": s, title: new Date(at).toISOString() },
        el("div", {}, s.replace(/_/g, " ")),
        el(
          "div",
          { class: "k" },
          at === t0 ? new Date(at).toLocaleTimeString() : `+${duration(at - t0)}`,
        ),
      ),
    ),
  );
}

function payoutSplit(payouts) {
  if (!payouts || payouts.length === 0)
    return el("p", { class: "muted", id: "payouts" }, "not paid yet");
  const total = payouts.reduce((s, p) => s + BigInt(p.amount), 0n);
  const bar = el("div", { class: "split" });
  for (const p of payouts) {
    const part = el("div", {
      class: p.role,
      title: `${p.role} ${short(p.recipient)}: ${eth(p.amount)}`,
    });
    part.style.width = total > 0n ? `${Number((BigInt(p.amount) * 10000n) / total) / 100}%` : "0";
    bar.append(part);
  }
  const pct = (a) =>
    total > 0n ? `${(Number((BigInt(a) * 10000n) / total) / 100).toFixed(2)}%` : "—";
  return el(
    "div",
    { id: "payouts" },
    bar,
    table(
      ["role", "recipient", { label: "amount", num: true }, { label: "share", num: true }],
      payouts.map((p) =>
        el(
          "tr",
          {},
          el("td", {}, p.role),
          el("td", {}, operatorLink(p.recipient)),
          el("td", { class: "num" }, eth(p.amount)),
          el("td", { class: "num" }, pct(p.amount)),
        ),
      ),
    ),
  );
}

/**
 * The proof deadline as the aggregator applies it: the block's (the auction's, extended by the
 * proof fabric's outages) once the block exists, paused while the fabric is down.
 */
function deadlineText(auction, block) {
  if (block && (block.stage === "proven" || block.stage === "paid")) return "met";
  if (block?.deadlinePaused) return "paused: proof fabric down";
  const due = block?.proofDeadline ?? auction.proofDeadline;
  return due > Date.now() ? `in ${duration(due - Date.now())}` : "passed";
}

function blockCards(auction, block) {
  const w = auction?.winner?.quote;
  const progress = block ? `${block.tree.proven} / ${block.tree.total}` : "—";
  return el(
    "div",
    { class: "cards", id: "block-cards" },
    card("stage", block ? block.stage.replace(/_/g, " ") : (auction?.status ?? "—")),
    card("winner", block?.winner ? operatorLink(block.winner) : w ? operatorLink(w.prover) : "—"),
    card("fee", bps(block?.feeBps ?? auction?.settlementFeeBps ?? null)),
    card("bond", w ? eth(w.bondAmount) : "—"),
    card("reward", auction ? eth(auction.blockReward) : "—"),
    card("txs", auction?.txCount ?? "—"),
    card("proofs", progress),
    card("proof system", auction?.proofSystem ?? "—"),
    card("deadline", auction ? deadlineText(auction, block) : "—"),
  );
}

async function blockPage(p, n) {
  setActive("auctions");
  const live = el("span", { class: "live" }, "");
  const head = el("h1", {}, `Block #${n}`, live);
  const cardsSlot = el("div");
  const timelineSlot = el("div");
  const treeSlot = el(
    "div",
    { id: "tree" },
    el("p", { class: "muted" }, "loading the proof tree…"),
  );
  const payoutsSlot = el("div");
  const zoom = el("button", {}, "actual size");
  mount(
    head,
    cardsSlot,
    el("h2", {}, "Stages"),
    timelineSlot,
    el("h2", {}, "Proof tree ", zoom),
    treeSlot,
    el("h2", {}, "Payout split"),
    payoutsSlot,
  );
  const signal = p.abort.signal;
  let auction = null;
  let block = null;
  let tree = null;
  const render = () => {
    cardsSlot.replaceChildren(blockCards(auction, block));
    timelineSlot.replaceChildren(timeline(block?.stages));
    payoutsSlot.replaceChildren(payoutSplit(block?.payouts));
  };
  const provingStart = () => block?.stages?.proving ?? block?.stages?.open_proving ?? null;
  const loadBlock = async () => {
    [auction, block] = await Promise.all([
      api(`/v1/auctions/${n}`, signal).catch((e) =>
        e.code === "AUCTION_NOT_FOUND" ? null : Promise.reject(e),
      ),
      api(`/v1/blocks/${n}`, signal).catch((e) =>
        e.code === "BLOCK_NOT_FOUND" ? null : Promise.reject(e),
      ),
    ]);
    if (tree) tree.provingStartedAt = provingStart();
    render();
  };
  // When the tree was last read, and where the block read says proving is ahead of the tree.
  let treeReadAt = 0;
  let behindSince = 0;
  let treeReads = 0;
  const loadTree = async () => {
    if (!block) return;
    const res = await api(`/v1/blocks/${n}/tree`, signal);
    treeReadAt = performance.now();
    behindSince = 0;
    if (res.nodes.length === 0) return;
    if (!tree) {
      tree = new TreeView(res.nodes, { block: n, provingStartedAt: provingStart() });
      let actual = false;
      zoom.onclick = () => {
        actual = !actual;
        tree.svg.style.width = actual ? `${tree.naturalWidth}px` : "100%";
        zoom.textContent = actual ? "fit to width" : "actual size";
      };
      treeSlot.replaceChildren(
        tree.legend,
        el("div", { class: "tree-wrap" }, tree.svg),
        el(
          "p",
          { class: "muted" },
          `${res.nodes.length} nodes, drawn in ${tree.buildMs.toFixed(0)} ms; hover a node for who proved it and how long it took, click a proven one for its proof`,
        ),
      );
    } else {
      tree.refresh(res.nodes);
    }
    tree.svg.setAttribute("data-tree-reads", String(++treeReads));
  };
  try {
    await loadBlock();
  } catch (err) {
    if (!signal.aborted) mount(head, showError(err));
    return;
  }
  if (!auction && !block) {
    mount(head, el("p", { class: "error" }, `no auction or block ${n}`));
    return;
  }
  if (!block)
    treeSlot.replaceChildren(
      el("p", { class: "muted" }, "the tree is fanned out when bidding closes"),
    );
  await loadTree().catch(() => {});

  // While the stream is live, node colours come from its events, at once, and a refresh (at most
  // every 1.5 s) reads only the block and its auction (stage, counts, payouts): the whole tree
  // (2,047 nodes for 1,024 transactions) is read again only on a stage change, after the stream
  // came back, when the block's proven count stays ahead of the tree's (a missed event), and
  // every TREE_LIVE_MS for the times and operators shown on hover. Without a live stream the
  // tree is read with every refresh. So many viewers of a big block do not each pull its whole
  // tree every 1.5 s.
  let streamLive = false;
  let treeWanted = false;
  const treeDue = () => {
    if (!tree || !streamLive || treeWanted) return true;
    if (performance.now() - treeReadAt >= TREE_LIVE_MS) return true;
    const provenHere = tree.counts().proven;
    if (!block || block.tree.proven <= provenHere) {
      behindSince = 0;
      return false;
    }
    behindSince ||= performance.now();
    return performance.now() - behindSince >= TREE_BEHIND_MS;
  };
  let refreshTimer = 0;
  const refreshSoon = (withTree = false) => {
    if (withTree) treeWanted = true;
    if (refreshTimer) return;
    refreshTimer = setTimeout(async () => {
      refreshTimer = 0;
      try {
        await loadBlock();
        if (treeDue()) {
          treeWanted = false;
          await loadTree();
        }
      } catch {}
    }, 1500);
  };
  signal.addEventListener("abort", () => clearTimeout(refreshTimer));
  const onEvent = (event, data) => {
    if (data?.block !== undefined && Number(data.block) !== n) return;
    if (event === "job" && tree && typeof data.id === "string") {
      const patch = { status: data.status };
      if (data.worker !== undefined) patch.worker = data.worker;
      tree.update(data.id, patch);
      refreshSoon();
    } else if (event === "stage" || event === "auction" || event === "reset") {
      refreshSoon(true);
    }
  };
  // Follows the stream while there is one; a block whose own stream is not there yet (bidding
  // still open) is followed once its tree exists.
  // A paid (or expired) block changes no more: no stream is opened for it, and the one open is
  // closed once a refresh finds it so (the market's event log stream never ends by itself, and each open
  // stream counts against the relay's per-client cap).
  let following = false;
  let stream = null;
  const isFinal = () => block?.stage === "paid" || block?.stage === "expired";
  signal.addEventListener("abort", () => stream?.abort());
  const startStream = () => {
    if (following || signal.aborted || isFinal()) return;
    following = true;
    stream = new AbortController();
    follow([`/v1/events?block=${n}`, `/v1/blocks/${n}/events`], {
      signal: stream.signal,
      onEvent,
      onState: (s) => {
        // Back after a drop: whatever happened meanwhile is read whole once.
        if (s === "live" && !streamLive) refreshSoon(true);
        streamLive = s === "live";
        live.textContent = s === "live" ? "● live" : s === "reconnecting" ? "reconnecting…" : "";
        live.className = s === "live" ? "live on" : "live";
      },
      // The per-block stream ends once the block is paid or expired; then there is nothing more to
      // follow.
      onEnd: () => {
        refreshSoon(true);
        return !isFinal();
      },
    })
      .catch(() => {})
      .finally(() => {
        following = false;
        streamLive = false;
        if (!signal.aborted) {
          live.textContent = "";
          live.className = "live";
        }
      });
  };
  startStream();
  // Until the block is paid, a gentle poll keeps the page current, stream or not: a stream
  // that stalls or drops an event (a proxy, a relay under load) must not freeze the page.
  every(p, 3000, () => {
    if (isFinal()) stream?.abort();
    if (isFinal() && tree) return;
    refreshSoon();
    if (tree && !following) startStream();
  });
}

// ---- Operators ----

async function operatorsPage(p) {
  setActive("operators");
  const slot = el("div");
  mount(
    el("h1", {}, "Operators"),
    el("p", { class: "muted" }, "workers signed in now, by operator"),
    slot,
  );
  const load = async () => {
    const items = [];
    let cursor = null;
    for (let i = 0; i < 10; i++) {
      const qs = new URLSearchParams({ limit: "500" });
      if (cursor) qs.set("cursor", cursor);
      const res = await api(`/v1/workers?${qs}`, p.abort.signal);
      items.push(...res.items);
      cursor = res.nextCursor;
      if (!cursor) break;
    }
    const by = new Map();
    for (const w of items) {
      const o = by.get(w.operator) ?? { workers: 0, capacity: 0, leases: 0, tiers: new Set() };
      o.workers++;
      o.capacity += w.capacity;
      o.leases += w.leases;
      o.tiers.add(w.tier);
      by.set(w.operator, o);
    }
    slot.replaceChildren(
      table(
        [
          "operator",
          { label: "workers", num: true },
          { label: "capacity", num: true },
          { label: "leases", num: true },
          "tiers",
        ],
        [...by.entries()].map(([op, o]) =>
          el(
            "tr",
            {},
            el("td", {}, operatorLink(op)),
            el("td", { class: "num" }, o.workers),
            el("td", { class: "num" }, o.capacity),
            el("td", { class: "num" }, o.leases),
            el("td", {}, [...o.tiers].sort((a, b) => a - b).join(", ")),
          ),
        ),
      ),
      by.size === 0 ? el("p", { class: "muted" }, "no worker signed in") : "",
    );
  };
  await load().catch((e) => slot.replaceChildren(showError(e)));
  every(p, 5000, () => load().catch(() => {}));
}

async function operatorPage(p, addr) {
  setActive("operators");
  const slot = el("div");
  mount(el("h1", {}, "Operator ", el("span", { class: "mono" }, addr)), slot);
  const signal = p.abort.signal;
  const load = async () => {
    const [prover, workers, payouts, penalties] = await Promise.all([
      api(`/v1/provers/${addr}`, signal),
      api(`/v1/workers?operator=${addr}&limit=500`, signal),
      api(`/v1/data/payouts?recipient=${addr}&limit=10`, signal),
      api(`/v1/data/penalties?operator=${addr}&limit=10`, signal),
    ]);
    const c = prover.collateral;
    const kinds = ["withholding", "invalid_proof", "slash"];
    slot.replaceChildren(
      el(
        "div",
        { class: "cards", id: "operator-cards" },
        card("deposited", eth(c.deposited)),
        card("available", eth(c.available)),
        card("locked", eth(c.locked)),
        card("slashed", eth(c.slashed)),
        card("earnings", eth(prover.earnings)),
        card("blocks won", prover.blocksWon),
        card("proofs delivered", prover.proofsDelivered),
        ...kinds.map((k) =>
          card(`penalties: ${k.replace("_", " ")}`, prover.penaltiesByKind?.[k] ?? 0),
        ),
      ),
      el("h2", {}, `Workers online (${workers.items.length})`),
      el(
        "div",
        { id: "operator-workers" },
        table(
          [
            "worker",
            { label: "tier", num: true },
            { label: "capacity", num: true },
            { label: "leases", num: true },
            "job types",
            "hardware",
            "signed in",
            "expires",
          ],
          workers.items.map((w) =>
            el(
              "tr",
              { "data-worker": w.workerId },
              el("td", { class: "mono" }, w.workerId),
              el("td", { class: "num tier" }, w.tier),
              el("td", { class: "num capacity" }, w.capacity),
              el("td", { class: "num" }, w.leases),
              el("td", {}, w.jobTypes.join(", ")),
              el("td", { class: "muted" }, hardware(w.hardware)),
              el("td", {}, ago(w.createdAt)),
              el("td", {}, `in ${duration(w.expiresAt - Date.now())}`),
            ),
          ),
        ),
      ),
      el("h2", {}, "Recent payouts ", el("a", { href: `#/payouts?recipient=${addr}` }, "all")),
      payouts.items.length ? payoutsTable(payouts.items) : el("p", { class: "muted" }, "none"),
      el("h2", {}, "Recent penalties ", el("a", { href: `#/penalties?operator=${addr}` }, "all")),
      penalties.items.length
        ? penaltiesTable(penalties.items)
        : el("p", { class: "muted" }, "none"),
    );
  };
  await load().catch((e) => slot.replaceChildren(showError(e)));
  every(p, 5000, () => load().catch(() => {}));
}

function hardware(h) {
  if (!h || typeof h !== "object") return "";
  return Object.entries(h)
    .slice(0, 6)
    .map(([k, v]) => `${k}: ${String(v).slice(0, 40)}`)
    .join(", ");
}

// ---- Payouts and penalties ----

function payoutsTable(items) {
  return table(
    ["block", "role", "recipient", { label: "amount", num: true }, "when"],
    items.map((x) =>
      el(
        "tr",
        {},
        el("td", {}, blockLink(x.blockNumber)),
        el("td", {}, x.role),
        el("td", {}, operatorLink(x.recipient)),
        el("td", { class: "num" }, eth(x.amount)),
        el("td", { class: "muted" }, ago(x.createdAt)),
      ),
    ),
  );
}

function penaltiesTable(items) {
  return table(
    ["block", "kind", "operator", "worker", "job", { label: "amount", num: true }, "when"],
    items.map((x) =>
      el(
        "tr",
        {},
        el("td", {}, x.blockNumber === null ? "—" : blockLink(x.blockNumber)),
        el("td", {}, x.kind.replace("_", " ")),
        el("td", {}, operatorLink(x.operator)),
        el("td", { class: "mono" }, x.worker ?? "—"),
        el("td", { class: "mono" }, x.jobId ?? "—"),
        el("td", { class: "num" }, eth(x.amount)),
        el("td", { class: "muted" }, ago(x.createdAt)),
      ),
    ),
  );
}

async function listPage(p, query, kind) {
  setActive(kind);
  const filterKey = kind === "payouts" ? "recipient" : "operator";
  const qs0 = new URLSearchParams({ limit: String(pageSize(query)) });
  const who = query.get(filterKey);
  if (isAddress(who)) qs0.set(filterKey, who);
  const block = query.get("block");
  if (block && /^\d{1,10}$/.test(block)) qs0.set("block", block);
  const slot = el("div");
  const pager = new Pager(p, async (cursor) => {
    const qs = new URLSearchParams(qs0);
    if (cursor) qs.set("cursor", cursor);
    const res = await api(`/v1/data/${kind}?${qs}`, p.abort.signal);
    slot.replaceChildren(
      (kind === "payouts" ? payoutsTable : penaltiesTable)(res.items),
      res.items.length === 0 ? el("p", { class: "muted" }, `no ${kind}`) : "",
    );
    return res.nextCursor;
  });
  const filters = [...qs0.entries()].filter(([k]) => k !== "limit");
  mount(
    el("h1", {}, kind === "payouts" ? "Payouts" : "Penalties"),
    filters.length
      ? el(
          "p",
          { class: "muted" },
          `filtered by ${filters.map(([k, v]) => `${k} ${k === "block" ? v : short(v)}`).join(", ")} · `,
          el("a", { href: `#/${kind}` }, "clear"),
        )
      : "",
    slot,
    pager.element,
  );
  await pager.load();
  every(p, LIST_POLL_MS * 2, () => pager.reload());
}

// ---- Routing ----

async function route() {
  const p = newPage();
  const hash = location.hash.replace(/^#/, "") || "/";
  const [path, q] = hash.split("?");
  const query = new URLSearchParams(q ?? "");
  const parts = path.split("/").filter(Boolean);
  try {
    if (parts.length === 0) return await auctionsPage(p, query);
    if (parts[0] === "block" && /^\d{1,10}$/.test(parts[1] ?? ""))
      return await blockPage(p, Number(parts[1]));
    if (parts[0] === "operators") return await operatorsPage(p);
    if (parts[0] === "operator" && isAddress(parts[1])) return await operatorPage(p, parts[1]);
    if (parts[0] === "payouts" || parts[0] === "penalties")
      return await listPage(p, query, parts[0]);
    mount(el("h1", {}, "Not found"), el("p", {}, el("a", { href: "#/" }, "back to the auctions")));
  } catch (err) {
    if (!p.abort.signal.aborted) mount(showError(err));
  }
}

document.getElementById("go").addEventListener("submit", (e) => {
  e.preventDefault();
  const v = document.getElementById("go-input").value.trim();
  if (/^\d{1,10}$/.test(v)) location.hash = `#/block/${v}`;
  else if (isAddress(v)) location.hash = `#/operator/${v}`;
});
window.addEventListener("hashchange", route);
route();
