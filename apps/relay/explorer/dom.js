// DOM helpers. Every string from the API goes in as text (textContent or attribute values set
// one by one), never as markup.

/** An element with attributes (string values; `class`, `href`, data-*), and children (nodes or text). */
export function el(tag, attrs = {}, ...children) {
  const node = document.createElement(tag);
  for (const [k, v] of Object.entries(attrs)) {
    if (v === undefined || v === null || v === false) continue;
    if (k.startsWith("on") && typeof v === "function") node.addEventListener(k.slice(2), v);
    else node.setAttribute(k, String(v));
  }
  append(node, children);
  return node;
}

const SVG = "http://www.w3.org/2000/svg";

export function svg(tag, attrs = {}, ...children) {
  const node = document.createElementNS(SVG, tag);
  for (const [k, v] of Object.entries(attrs)) {
    if (v !== undefined && v !== null) node.setAttribute(k, String(v));
  }
  append(node, children);
  return node;
}

function append(node, children) {
  for (const c of children.flat()) {
    if (c === undefined || c === null || c === false) continue;
    node.append(c instanceof Node ? c : document.createTextNode(String(c)));
  }
}

/** Replaces the main area's content. */
export function mount(...children) {
  const main = document.getElementById("main");
  main.replaceChildren();
  append(main, children);
  return main;
}

const ADDRESS = /^0x[0-9a-fA-F]{40}$/;
export const isAddress = (s) => typeof s === "string" && ADDRESS.test(s);

export const short = (addr) =>
  typeof addr === "string" && addr.length > 14
    ? `${addr.slice(0, 8)}…${addr.slice(-6)}`
    : String(addr ?? "");

/** A link to an operator's page (the address is checked before it goes into the URL). */
export function operatorLink(addr) {
  if (!isAddress(addr)) return el("span", { class: "muted" }, "—");
  return el("a", { href: `#/operator/${addr}`, class: "mono", title: addr }, short(addr));
}

export function blockLink(n) {
  const num = Number(n);
  if (!Number.isSafeInteger(num)) return el("span", {}, "—");
  return el("a", { href: `#/block/${num}` }, `#${num}`);
}

/** Wei (decimal string) as ETH, exact, trailing zeros trimmed. */
export function eth(wei) {
  if (wei === null || wei === undefined) return "—";
  let v;
  try {
    v = BigInt(wei);
  } catch {
    return String(wei);
  }
  const neg = v < 0n;
  if (neg) v = -v;
  const unit = 10n ** 18n;
  const whole = v / unit;
  const frac = (v % unit).toString().padStart(18, "0").replace(/0+$/, "");
  return `${neg ? "-" : ""}${whole}${frac ? `.${frac}` : ""} ETH`;
}

export const bps = (n) =>
  n === null || n === undefined ? "—" : `${(Number(n) / 100).toFixed(2)}%`;

export function ago(ms, now = Date.now()) {
  const d = Math.round((now - Number(ms)) / 1000);
  if (d < 60) return `${d}s ago`;
  if (d < 3600) return `${Math.floor(d / 60)}m ago`;
  if (d < 86400) return `${Math.floor(d / 3600)}h ago`;
  return new Date(Number(ms)).toISOString().slice(0, 16).replace("T", " ");
}

export function duration(ms) {
  if (ms === null || ms === undefined || !Number.isFinite(ms)) return "—";
  if (ms < 1000) return `${Math.round(ms)} ms`;
  if (ms < 60_000) return `${(ms / 1000).toFixed(1)} s`;
  return `${Math.floor(ms / 60_000)}m ${Math.round((ms % 60_000) / 1000)}s`;
}

export function countdown(toMs, now = Date.now()) {
  const left = Number(toMs) - now;
  if (left <= 0) return "closing…";
  return `closes in ${duration(left)}`;
}

export function card(key, value) {
  return el(
    "div",
    { class: "card" },
    el("div", { class: "k" }, key),
    el("div", { class: "v" }, value),
  );
}

export function table(headers, rows) {
  return el(
    "table",
    {},
    el(
      "thead",
      {},
      el(
        "tr",
        {},
        headers.map((h) => el("th", { class: h.num ? "num" : undefined }, h.label ?? h)),
      ),
    ),
    el("tbody", {}, rows),
  );
}
