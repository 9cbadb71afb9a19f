// The mutation library of the relay fuzz (test/fuzz-*.security.test.ts): JSON bodies as trees,
// mutations applied to one node (drop, set, raw JSON text, extra keys, flips, deep nesting, long
// strings, a plausible neighbouring value), and rendering a body spec to the text that is sent.
// It lives here, apart from the properties, so that every fuzz file mutates bodies the same way.
import { keccak256, toHex } from "viem";
import { account } from "../fixtures.ts";

export type Json = null | boolean | number | string | Json[] | { [key: string]: Json };
type Container = Json[] | { [key: string]: Json };

export type Op =
  | { t: "drop" }
  | { t: "set"; value: Json }
  /** Raw JSON text in place of the value (numbers JSON.stringify cannot write, deep nesting). */
  | { t: "raw"; text: string }
  | { t: "extra"; key: string; value: Json }
  /** Object → array of its values; array → object; scalar → [scalar]. */
  | { t: "flip" }
  | { t: "nest"; depth: number; shape: "array" | "object" }
  | { t: "long"; unit: string; length: number }
  /** Another value of the same type and format (reaches signature and domain checks). */
  | { t: "plausible"; seed: number };

export interface Mutation {
  /** Which node of the body (index into its nodes in document order, modulo their count). */
  at: number;
  op: Op;
}

export type BodySpec =
  /** resign: after mutating, sign the body again (when it still can be), to get past signatures. */
  | { kind: "valid"; base: number; mutations: Mutation[]; resign: boolean }
  | { kind: "truncated"; base: number; cut: number }
  | { kind: "json"; value: Json }
  | { kind: "text"; text: string }
  | { kind: "none" };

type Path = (string | number)[];

function nodesOf(v: Json, path: Path = [], out: Path[] = []): Path[] {
  out.push(path);
  if (Array.isArray(v)) {
    for (const [i, x] of v.entries()) nodesOf(x, [...path, i], out);
  } else if (v !== null && typeof v === "object") {
    for (const k of Object.keys(v)) nodesOf(v[k]!, [...path, k], out);
  }
  return out;
}

function at(root: Json, path: Path): Json {
  let v = root;
  for (const k of path) v = (v as Record<string | number, Json>)[k]!;
  return v;
}

const isObject = (v: Json): v is { [key: string]: Json } =>
  v !== null && typeof v === "object" && !Array.isArray(v);

const rawMark = (i: number) => `\u{E000}raw${i}\u{E000}`;

function defineKey(obj: { [key: string]: Json }, key: string, value: Json) {
  // defineProperty, so that "__proto__" becomes an own key that JSON.stringify writes out.
  Object.defineProperty(obj, key, { value, enumerable: true, writable: true, configurable: true });
}

function nested(depth: number, shape: "array" | "object"): string {
  return shape === "array"
    ? `${"[".repeat(depth)}${"]".repeat(depth)}`
    : `${'{"a":'.repeat(depth)}1${"}".repeat(depth)}`;
}

/** Applies one mutation; undefined means "no body at all" (the root was dropped). */
function mutate(root: Json, m: Mutation, raws: string[]): Json | undefined {
  const all = nodesOf(root);
  let path = all[m.at % all.length]!;
  const op = m.op;
  // An op's value is inserted as a copy: the tree is mutated in place by later ops, and an op
  // (a constant one above all) is shared by every run, so a value inserted by reference would be
  // changed for good, even made to contain itself.
  if (op.t === "extra") {
    // The nearest object at or above the chosen node gets the extra key.
    while (path.length > 0 && !isObject(at(root, path))) path = path.slice(0, -1);
    const target = at(root, path);
    const value = structuredClone(op.value);
    if (!isObject(target)) return { [op.key]: value, value: root };
    defineKey(target, op.key, value);
    return root;
  }
  const current = at(root, path);
  let replacement: Json;
  switch (op.t) {
    case "drop":
      if (path.length === 0) return undefined;
      break;
    case "set":
      replacement = structuredClone(op.value);
      break;
    case "raw":
      raws.push(op.text);
      replacement = rawMark(raws.length - 1);
      break;
    case "nest":
      raws.push(nested(op.depth, op.shape));
      replacement = rawMark(raws.length - 1);
      break;
    case "long":
      replacement = op.unit.repeat(op.length);
      break;
    case "plausible":
      replacement = plausible(current, op.seed);
      break;
    case "flip":
      replacement = Array.isArray(current)
        ? Object.fromEntries(current.map((v, i) => [String(i), v]))
        : isObject(current)
          ? Object.values(current)
          : [current];
      break;
  }
  if (path.length === 0) return replacement!;
  const parent = at(root, path.slice(0, -1)) as Container;
  const key = path[path.length - 1]!;
  if (op.t === "drop") {
    if (Array.isArray(parent)) parent.splice(Number(key), 1);
    else delete parent[String(key)];
  } else if (Array.isArray(parent)) parent[Number(key)] = replacement!;
  else defineKey(parent, String(key), replacement!);
  return root;
}

/** A well-formed value of the same kind as `v`: what a careless or malicious client would send. */
function plausible(v: Json, seed: number): Json {
  if (typeof v === "boolean") return !v;
  if (typeof v === "number") {
    // Small integers (fees, counts, slots) and unix-ms times nudged either way.
    return v > 1e9 ? v + (seed % 2_000_001) - 1_000_000 : seed % 20_001;
  }
  if (typeof v === "string") {
    if (/^0x[0-9a-fA-F]{40}$/.test(v)) return account(1 + (seed % 50)).address;
    if (/^0x[0-9a-fA-F]{64}$/.test(v)) return keccak256(toHex(seed));
    if (/^0x[0-9a-fA-F]{130}$/.test(v)) {
      // One hex digit of the signature changed (r, s or v).
      const i = 2 + (seed % 130);
      const d = ((Number.parseInt(v[i]!, 16) + 1 + (seed % 15)) % 16).toString(16);
      return `${v.slice(0, i)}${d}${v.slice(i + 1)}`;
    }
    if (/^\d+$/.test(v)) {
      const n = BigInt(v) + BigInt(seed % 10_001) - 5_000n;
      return (n < 0n ? 0n : n).toString();
    }
    return `${v}${String.fromCharCode(97 + (seed % 26))}`;
  }
  if (Array.isArray(v) && v.length > 0) {
    return seed % 2 === 0 ? [...v].reverse() : [...v, v[seed % v.length]!];
  }
  return v;
}

function render(base: Json, mutations: Mutation[]): string | undefined {
  const raws: string[] = [];
  let value: Json | undefined = structuredClone(base);
  for (const m of mutations) {
    if (value === undefined) break;
    value = mutate(value, m, raws);
  }
  if (value === undefined) return undefined;
  let text = JSON.stringify(value);
  raws.forEach((raw, i) => {
    text = text.replace(JSON.stringify(rawMark(i)), () => raw);
  });
  return text;
}

/** Signs a (mutated) body again; throws when it cannot be signed as it is. */
export type Resigner = (body: Record<string, unknown>) => Promise<Record<string, unknown>>;

/** The body as text, signed again after its mutations when the spec says so and it can be. */
export async function signedBodyText(
  spec: BodySpec,
  bases: readonly Json[],
  resign: Resigner,
): Promise<string | undefined> {
  const text = bodyText(spec, bases);
  if (spec.kind !== "valid" || !spec.resign || text === undefined) return text;
  try {
    const parsed = JSON.parse(text) as unknown;
    if (parsed === null || typeof parsed !== "object" || Array.isArray(parsed)) return text;
    return JSON.stringify(await resign(parsed as Record<string, unknown>));
  } catch {
    return text; // not signable (wrong types, out of range): sent as mutated
  }
}

export function bodyText(spec: BodySpec, bases: readonly Json[]): string | undefined {
  switch (spec.kind) {
    case "valid":
      return render(bases[spec.base % bases.length]!, spec.mutations);
    case "truncated": {
      const full = JSON.stringify(bases[spec.base % bases.length]);
      return full.slice(0, spec.cut % full.length);
    }
    case "json":
      return JSON.stringify(spec.value);
    case "text":
      return spec.text;
    case "none":
      return undefined;
  }
}
