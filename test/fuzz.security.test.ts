// Property-based fuzzing of every relay endpoint on real Redis and Postgres, through
// `app.inject`. Bodies start from VALID signed fixtures and get one field (sometimes two or three)
// mutated: dropped, wrong type, huge, negative, hex garbage, extra fields (prototype keys too),
// unicode, deep nesting, arrays for objects, empty strings, very long strings under the body
// limit; or they are random JSON (fc.jsonValue), random non-JSON text, truncated JSON, or absent,
// under assorted content types. Path parameters, query strings and bearer tokens are fuzzed too.
//
// Properties, for every request:
// - never a 5xx;
// - every error is exactly { error: { code: /^[A-Z_]+$/, message: string, requestId: string } },
//   its code is in the closed set with the HTTP status the code maps to, and requestId is the
//   x-request-id header;
// - a 4xx to a POST or DELETE changes nothing (Postgres rows, ledger, balances, sessions, jobs,
//   provers, the Redis lease book). The one documented exception, 422 INVALID_PROOF, may only
//   record its penalty and put that job back in the queue.
// Accepted requests (2xx: a valid bid, a deposit, a sign-in...) are allowed and change state.
//
// The regression tests at the end pin bugs this fuzz found (router errors outside the error
// shape, cursor and filter overflows answered with 500, deposits past uint256).
import { errorStatus } from "@prover-boost/contract";
import { simProof } from "@prover-boost/core";
import {
  type AuctionJson,
  type LeasedJob,
  type QuoteJson,
  signAuction,
  signBidCancellation,
  signQuote,
  signWorkerLogin,
  type WorkerLoginJson,
} from "@prover-boost/sdk";
import fc from "fast-check";
import { keccak256, toHex } from "viem";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import {
  account,
  allJobTypes,
  currentSlot,
  domain,
  openAuction,
  signedBid,
  snapshot,
} from "./fixtures.ts";
import { ADMIN_TOKEN, eventually, type Stack, sequencer, startStack } from "./harness.ts";

const OPEN_BLOCK = 10; // open for the whole file
const PROVING_BLOCK = 20; // closed at once, won by `prover`, its proof tree leased by workers
const FRESH_BLOCKS = [100, 101, 102, 103]; // valid auction bodies the fuzz may open
const UINT256_MAX = 2n ** 256n - 1n;

const prover = account(0xf1); // collateral-rich bidder and winner of PROVING_BLOCK
const poor = account(0xf2); // no collateral
const stranger = account(0xf3); // not a sequencer

let stack: Stack;

// ---------------------------------------------------------------------------------------------
// JSON values and mutations

type Json = null | boolean | number | string | Json[] | { [key: string]: Json };
type Container = Json[] | { [key: string]: Json };

type Op =
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

interface Mutation {
  /** Which node of the body (index into its nodes in document order, modulo their count). */
  at: number;
  op: Op;
}

type BodySpec =
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
  if (op.t === "extra") {
    // The nearest object at or above the chosen node gets the extra key.
    while (path.length > 0 && !isObject(at(root, path))) path = path.slice(0, -1);
    const target = at(root, path);
    if (!isObject(target)) return { [op.key]: op.value, value: root };
    defineKey(target, op.key, op.value);
    return root;
  }
  const current = at(root, path);
  let replacement: Json;
  switch (op.t) {
    case "drop":
      if (path.length === 0) return undefined;
      break;
    case "set":
      replacement = op.value;
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
type Resigner = (body: Record<string, unknown>) => Promise<Record<string, unknown>>;

/** The body as text, signed again after its mutations when the spec says so and it can be. */
async function signedBodyText(
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

function bodyText(spec: BodySpec, bases: readonly Json[]): string | undefined {
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

// ---------------------------------------------------------------------------------------------
// Arbitraries

const set = (value: Json): Op => ({ t: "set", value });
const raw = (text: string): Op => ({ t: "raw", text });
const hexUnit = fc.constantFrom(..."0123456789abcdefABCDEF");
const hex = (minLength: number, maxLength: number) =>
  fc.string({ unit: hexUnit, minLength, maxLength });
const digits = (minLength: number, maxLength: number) =>
  fc.string({ unit: fc.constantFrom(..."0123456789"), minLength, maxLength });
const jsonValue = (maxDepth = 2) => fc.jsonValue({ maxDepth }) as fc.Arbitrary<Json>;

const hugeOrNegative: fc.Arbitrary<Op> = fc.oneof(
  fc.constantFrom<Op>(
    raw("1e400"),
    raw("-1e400"),
    raw("-0"),
    raw("1E+999999"),
    raw("5e-324"),
    raw("1.0"),
    raw("0.1e1"),
    raw(`1${"0".repeat(90)}`),
    set(2 ** 53),
    set(2 ** 53 + 2),
    set(Number.MAX_VALUE),
    set(Number.MAX_SAFE_INTEGER),
    set(2_147_483_648),
    set(4_294_967_296),
    set(1e21),
    set(0.5),
    set(-1),
    set(-2_147_483_649),
    set(Number.MIN_SAFE_INTEGER),
    set(UINT256_MAX.toString()),
    set((UINT256_MAX + 1n).toString()),
    set("9".repeat(78)),
    set("9".repeat(79)),
    set("-1"),
    set("-0"),
    set("01"),
    set("1e3"),
    set(" 1"),
    set("1 "),
    set("+1"),
    set("0x10"),
    set("1.5"),
    set("NaN"),
    set("Infinity"),
  ),
  fc.bigInt({ min: -(2n ** 300n), max: 2n ** 300n }).map((n) => raw(n.toString())),
  fc.bigInt({ min: -(2n ** 300n), max: 2n ** 300n }).map((n) => set(n.toString())),
  fc.integer().map(set),
  fc.double({ noNaN: true, noDefaultInfinity: true }).map(set),
);

const hexGarbage: fc.Arbitrary<Op> = fc
  .oneof(
    hex(0, 140).map((h) => `0x${h}`),
    hex(1, 132),
    fc.constantFrom(
      "0x",
      "0xzz",
      "0x0",
      "0x-1",
      `0X${"ab".repeat(32)}`,
      `0x${"g".repeat(64)}`,
      `0x${"ab".repeat(31)}a`,
      `0x${"ab".repeat(65)}`,
      `0x${"ab".repeat(66)}`,
      `0x${"00".repeat(65)}`,
      `0x${"ff".repeat(65)}`,
      `0x${"00".repeat(64)}1b`,
      `0x${"ff".repeat(64)}1c`,
      ` 0x${"ab".repeat(32)}`,
      `0x${"ab".repeat(32)} `,
      `0x${"0".repeat(40)}`,
    ),
  )
  .map(set);

const unicode: fc.Arbitrary<Op> = fc
  .oneof(
    fc.string({ unit: "binary", maxLength: 40 }),
    fc.string({ unit: "grapheme", maxLength: 20 }),
    fc.constantFrom(
      "１２３",
      "٣٤",
      `0x\u200b${"ab".repeat(32)}`,
      "\u202e0x12",
      "💥",
      "\u0000",
      "\ud800",
      "\udfff\ud800",
      "e\u0301",
      "İ",
      "ß",
      "0xＡＢ",
      "\ufeff0x00",
    ),
  )
  .map(set);

const wrongType: fc.Arbitrary<Op> = fc
  .oneof(
    fc.constantFrom<Json>(null, true, false, 0, 1, "", "x", [], {}, [[]], { a: null }),
    jsonValue(2),
  )
  .map(set);

const extraField: fc.Arbitrary<Op> = fc.oneof(
  fc
    .record({
      key: fc.oneof(
        fc.string({ maxLength: 20 }),
        fc.constantFrom(
          "__proto__",
          "constructor",
          "prototype",
          "toString",
          "hasOwnProperty",
          "then",
          "",
          "quote",
          "signature",
          "login",
          "auction",
        ),
      ),
      value: jsonValue(2),
    })
    .map(({ key, value }): Op => ({ t: "extra", key, value })),
  fc.constantFrom<Op>(
    { t: "extra", key: "constructor", value: { prototype: { polluted: true } } },
    { t: "extra", key: "__proto__", value: { isAdmin: true } },
  ),
);

const op: fc.Arbitrary<Op> = fc.oneof(
  { weight: 3, arbitrary: fc.constant<Op>({ t: "drop" }) },
  { weight: 3, arbitrary: wrongType },
  { weight: 4, arbitrary: hugeOrNegative },
  { weight: 3, arbitrary: hexGarbage },
  { weight: 2, arbitrary: extraField },
  { weight: 2, arbitrary: unicode },
  {
    weight: 1,
    arbitrary: fc
      .record({
        depth: fc.integer({ min: 2, max: 50_000 }),
        shape: fc.constantFrom<"array" | "object">("array", "object"),
      })
      .map(({ depth, shape }): Op => ({ t: "nest", depth, shape })),
  },
  { weight: 2, arbitrary: fc.constant<Op>({ t: "flip" }) },
  { weight: 5, arbitrary: fc.nat().map((seed): Op => ({ t: "plausible", seed })) },
  { weight: 2, arbitrary: fc.constant(set("")) },
  {
    weight: 1,
    // Up to ~800 kB, under the 1 MiB body limit.
    arbitrary: fc
      .record({
        unit: fc.constantFrom("a", "0", "f", "é", "💥", "\\"),
        length: fc.integer({ min: 100, max: 200_000 }),
      })
      .map(({ unit, length }): Op => ({ t: "long", unit, length })),
  },
);

const mutation: fc.Arbitrary<Mutation> = fc.record({ at: fc.nat({ max: 1000 }), op });

const mutations: fc.Arbitrary<Mutation[]> = fc.oneof(
  { weight: 1, arbitrary: fc.constant<Mutation[]>([]) },
  { weight: 10, arbitrary: mutation.map((m) => [m]) },
  { weight: 2, arbitrary: fc.array(mutation, { minLength: 2, maxLength: 3 }) },
);

const nonJson: fc.Arbitrary<string> = fc.oneof(
  fc.string({ maxLength: 60 }),
  fc.string({ unit: "binary", maxLength: 60 }),
  fc.constantFrom(
    "",
    " ",
    "{",
    "}",
    "[",
    '{"quote":',
    "nul",
    "tru",
    "'a'",
    "{a:1}",
    '{"a":1,}',
    "[1,]",
    '"unterminated',
    "{}{}",
    "0x",
    "NaN",
    "undefined",
    "\u0000",
    "\ufeff{}",
    "// comment\n{}",
    '{"a":1}garbage',
    '{"a":"\\x41"}',
    '{"a":"\\ud800"}',
  ),
);

const body = (n: number): fc.Arbitrary<BodySpec> =>
  fc.oneof(
    {
      weight: 14,
      arbitrary: fc.record({
        kind: fc.constant("valid" as const),
        base: fc.nat({ max: n - 1 }),
        mutations,
        resign: fc.boolean(),
      }),
    },
    {
      weight: 1,
      arbitrary: fc.record({
        kind: fc.constant("truncated" as const),
        base: fc.nat({ max: n - 1 }),
        cut: fc.nat(),
      }),
    },
    {
      weight: 2,
      arbitrary: fc.record({ kind: fc.constant("json" as const), value: jsonValue(4) }),
    },
    { weight: 2, arbitrary: fc.record({ kind: fc.constant("text" as const), text: nonJson }) },
    { weight: 1, arbitrary: fc.constant<BodySpec>({ kind: "none" }) },
  );

const contentType: fc.Arbitrary<string | null> = fc.oneof(
  { weight: 12, arbitrary: fc.constant("application/json") },
  {
    weight: 3,
    arbitrary: fc.constantFrom(
      null,
      "application/json; charset=utf-8",
      "APPLICATION/JSON",
      "application/json;charset=UTF-8",
      "text/plain",
      "text/plain; charset=utf-8",
      "application/x-www-form-urlencoded",
      "application/octet-stream",
      "multipart/form-data; boundary=xyz",
      "application/json-patch+json",
      "text/json",
      "application/jsonx",
      "application/json; charset=utf-16",
      "application/json; charset=latin1",
      "*/*",
      "application/",
      "json",
      "",
    ),
  },
);

interface Param {
  value: string;
  /** Put into the URL as is (only a few malformed percent-encodings), else percent-encoded. */
  raw: boolean;
}
const encoded = (value: string): Param => ({ value, raw: false });
const badUrlPieces = ["%", "%zz", "%E0%A4%A", "%00", "..", "%2F"];

const numberParam: fc.Arbitrary<Param> = fc.oneof(
  fc
    .constantFrom(
      String(OPEN_BLOCK),
      String(PROVING_BLOCK),
      "0",
      "2147483647",
      "2147483648",
      "-1",
      "99999999999999999999",
      "1e3",
      "1e400",
      "1.5",
      "-0",
      "0x10",
      " 1",
      "1 ",
      "+5",
      "NaN",
      "Infinity",
      "",
      "00010",
      "٣",
      "9".repeat(150),
    )
    .map(encoded),
  fc.nat().map((n) => encoded(String(n))),
  fc.integer({ min: -1e9, max: -1 }).map((n) => encoded(String(n))),
  fc.string({ maxLength: 30 }).map(encoded),
  fc.string({ unit: "binary", maxLength: 10 }).map(encoded),
  fc.constantFrom(...badUrlPieces).map((value) => ({ value, raw: true })),
);

const flipCase = (s: string) =>
  s.replace(/[a-fA-F]/, (c) => (c === c.toLowerCase() ? c.toUpperCase() : c.toLowerCase()));

const addressParam: fc.Arbitrary<Param> = fc.oneof(
  fc
    .constantFrom(
      prover.address,
      prover.address.toLowerCase(),
      `0x${prover.address.slice(2).toUpperCase()}`,
      `0X${prover.address.slice(2)}`,
      flipCase(prover.address),
      prover.address.slice(2),
      `${prover.address}0`,
      prover.address.slice(0, -1),
      `0x${"0".repeat(40)}`,
      `0x${"g".repeat(40)}`,
      "",
      "0x",
    )
    .map(encoded),
  hex(0, 60).map((h) => encoded(`0x${h}`)),
  fc.string({ maxLength: 50 }).map(encoded),
  fc.constantFrom(...badUrlPieces).map((value) => ({ value, raw: true })),
);

/** Lone surrogates replaced, so that encodeURIComponent and URLSearchParams accept the string. */
const wellFormed = (s: string) =>
  s.replace(/[\ud800-\udbff](?![\udc00-\udfff])|(?<![\ud800-\udbff])[\udc00-\udfff]/g, "\ufffd");

const pathPiece = (p: Param) => (p.raw ? p.value : encodeURIComponent(wellFormed(p.value)));

type Auth =
  | { t: "none" }
  | { t: "valid" }
  | { t: "variant"; variant: "lower" | "bare" | "double" | "suffix" | "prefix" | "trailing" }
  | { t: "junk"; header: string };

const auth: fc.Arbitrary<Auth> = fc.oneof(
  { weight: 4, arbitrary: fc.constant<Auth>({ t: "valid" }) },
  { weight: 1, arbitrary: fc.constant<Auth>({ t: "none" }) },
  {
    weight: 1,
    arbitrary: fc
      .constantFrom("lower", "bare", "double", "suffix", "prefix", "trailing")
      .map((variant): Auth => ({ t: "variant", variant })),
  },
  {
    weight: 1,
    arbitrary: fc
      .oneof(
        fc
          .string({
            unit: fc.constantFrom(
              ..."ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789_-",
            ),
            minLength: 20,
            maxLength: 200,
          })
          .map((t) => `Bearer ${t}`),
        fc.string({ unit: "grapheme-ascii", maxLength: 80 }).map((t) => `Bearer ${t}`),
        fc.string({ unit: "grapheme-ascii", maxLength: 80 }),
        fc.constantFrom("Bearer", "Bearer ", "Basic dXNlcjpwYXNz", `Bearer ${"A".repeat(5000)}`),
      )
      .map((header): Auth => ({ t: "junk", header: header.replace(/[^\x20-\x7e]/g, "") })),
  },
);

function authHeader(a: Auth, token: string): Record<string, string> {
  switch (a.t) {
    case "none":
      return {};
    case "valid":
      return { authorization: `Bearer ${token}` };
    case "junk":
      return { authorization: a.header };
    case "variant":
      return {
        authorization: {
          lower: `bearer ${token}`,
          bare: token,
          double: `Bearer  ${token}`,
          suffix: `Bearer ${token}x`,
          prefix: `Bearer x${token}`,
          trailing: `Bearer ${token} `,
        }[a.variant],
      };
  }
}

// ---------------------------------------------------------------------------------------------
// State, requests and the properties

interface Req {
  method: "GET" | "POST" | "DELETE" | "PUT" | "PATCH";
  url: string;
  headers: Record<string, string>;
  payload?: string | undefined;
  /** For 422 INVALID_PROOF: the job the proof was for. */
  jobId?: string | undefined;
}

type State = Awaited<ReturnType<typeof snapshot>> & {
  provers: string[];
  leases: Record<string, string | null>;
  sessionLeases: Record<string, unknown>;
};

/** snapshot(stack), plus provers and the Redis lease book (entries and per-session sets). */
async function state(): Promise<State> {
  const redis = stack.relay.ctx.fabric.redis;
  const base = await snapshot(stack);
  const provers = (await stack.db.prisma.prover.findMany({ orderBy: { address: "asc" } })).map(
    (p) => p.address,
  );
  const leaseKeys = (await redis.keys(`${stack.prefix}:pb:lease:*`)).sort();
  const leaseValues = await Promise.all(
    leaseKeys.map(async (k) => JSON.stringify(await redis.hgetall(k))),
  );
  const setKeys = (await redis.keys(`${stack.prefix}:pb:session-leases:*`)).sort();
  const sessionLeases: Record<string, unknown> = {};
  for (const k of setKeys) sessionLeases[k] = await redis.zrange(k, 0, "-1", "WITHSCORES");
  return {
    ...base,
    provers,
    leases: Object.fromEntries(leaseKeys.map((k, i) => [k, leaseValues[i] ?? null])),
    sessionLeases,
  };
}

function describeReq(req: Req, status: number, text: string) {
  const payload =
    req.payload === undefined
      ? "(none)"
      : req.payload.length > 300
        ? `${req.payload.slice(0, 300)}… (${req.payload.length} chars)`
        : req.payload;
  return `${req.method} ${req.url.slice(0, 200)} headers=${JSON.stringify(req.headers).slice(0, 200)} payload=${payload} → ${status} ${text.slice(0, 300)}`;
}

const omit = (s: State, keys: string[]) =>
  Object.fromEntries(Object.entries(s).filter(([k]) => !keys.includes(k)));

let requests = 0;
const statuses = new Map<number, number>();
const codes = new Map<string, number>();

/** Sends one request and checks the properties. */
async function exercise(req: Req): Promise<void> {
  const mutating = req.method !== "GET";
  const before = mutating ? await state() : null;
  const res = await stack.relay.app.inject({
    method: req.method,
    url: req.url,
    headers: req.headers,
    ...(req.payload === undefined ? {} : { payload: req.payload }),
  });
  requests++;
  statuses.set(res.statusCode, (statuses.get(res.statusCode) ?? 0) + 1);
  const what = describeReq(req, res.statusCode, res.body);
  let parsed: unknown;
  try {
    parsed = res.body.length > 0 ? JSON.parse(res.body) : undefined;
  } catch {
    parsed = undefined;
  }
  expect(res.statusCode, `5xx: ${what}`).toBeLessThan(500);
  if (res.statusCode < 400) return;
  const b = parsed as { error?: { code?: unknown; message?: unknown; requestId?: unknown } };
  expect(b !== null && typeof b === "object" ? Object.keys(b) : b, `shape: ${what}`).toEqual([
    "error",
  ]);
  expect(Object.keys(b.error ?? {}).sort(), `shape: ${what}`).toEqual([
    "code",
    "message",
    "requestId",
  ]);
  const { code, message, requestId } = b.error as Record<string, unknown>;
  codes.set(String(code), (codes.get(String(code)) ?? 0) + 1);
  expect(code, `code: ${what}`).toMatch(/^[A-Z_]+$/);
  expect(typeof message, `message: ${what}`).toBe("string");
  expect(typeof requestId, `requestId: ${what}`).toBe("string");
  expect(requestId, `requestId: ${what}`).toBe(res.headers["x-request-id"]);
  expect(errorStatus[code as keyof typeof errorStatus], `status of ${code}: ${what}`).toBe(
    res.statusCode,
  );
  if (!mutating || res.statusCode >= 500) return;
  const after = await state();
  if (code === "INVALID_PROOF" && req.jobId) {
    // Documented: the invalid proof is penalized and the job goes straight back to the queue.
    const exempt = ["penalties", "jobs", "leaseKeys", "leases", "sessionLeases"];
    expect(omit(after, exempt), `state after ${what}`).toEqual(omit(before!, exempt));
    expect(after.penalties, `penalty after ${what}`).toBe(before!.penalties + 1);
    const jobsBefore = (before!.jobs as { id: string }[]).filter((j) => j.id !== req.jobId);
    const jobsAfter = (after.jobs as { id: string; status: string }[]).filter(
      (j) => j.id !== req.jobId,
    );
    expect(jobsAfter, `other jobs after ${what}`).toEqual(jobsBefore);
    const job = (after.jobs as { id: string; status: string }[]).find((j) => j.id === req.jobId);
    expect(job?.status, `requeued after ${what}`).toBe("queued");
    return;
  }
  expect(after, `a ${res.statusCode} changed state: ${what}`).toEqual(before);
}

function withBody(ct: string | null, text: string | undefined): Pick<Req, "headers" | "payload"> {
  return { headers: ct === null ? {} : { "content-type": ct }, payload: text };
}

// ---------------------------------------------------------------------------------------------
// Fixtures: valid signed bodies to mutate, and two signed-in workers holding leases

interface Worker {
  token: string;
  sessionId: string;
}
let mainWorker: Worker; // holds one job of PROVING_BLOCK; its token drives heartbeat/result/fail
let fullWorker: Worker; // holds one job and has capacity 1: its leases fail fast (409)
let fullJob: LeasedJob;
let mainJob: LeasedJob | null = null;

const bases: Record<string, Json[]> = {};
let cancelBases: { block: number; prover: string; body: Json }[] = [];

async function signIn(workerId: string): Promise<Worker> {
  const login: WorkerLoginJson = {
    operator: prover.address,
    workerId,
    issuedAt: Date.now(),
    capacity: 1,
    jobTypes: allJobTypes,
    hardware: {},
  };
  const signature = await signWorkerLogin(prover, domain, login);
  const s = await stack.client.createSession(login, signature);
  return { token: s.token, sessionId: s.sessionId };
}

async function leaseFor(w: Worker): Promise<LeasedJob | null> {
  const res = await stack.relay.app.inject({
    method: "POST",
    url: "/v1/jobs/lease",
    headers: { authorization: `Bearer ${w.token}`, "content-type": "application/json" },
    payload: JSON.stringify({ waitMs: 0 }),
  });
  if (res.statusCode === 204) return null;
  expect(res.statusCode, res.body).toBe(200);
  const job = (JSON.parse(res.body) as { job: LeasedJob }).job;
  // The job row may be marked `leased` after the answer: let it settle before any snapshot.
  await eventually(async () => {
    const row = await stack.db.prisma.proofJob.findUnique({ where: { id: job.id } });
    return row?.status === "leased";
  });
  return job;
}

async function holds(w: Worker, job: LeasedJob | null) {
  if (!job) return false;
  return (await stack.relay.ctx.broker.leaseOf(w.sessionId, job.id)) !== null;
}

/** The main worker holds a lease again (its last one may have been given back or proven). */
async function ensureMainLease() {
  if (await holds(mainWorker, mainJob)) return;
  mainJob = await leaseFor(mainWorker);
}

const keyOf = (address: unknown) =>
  [prover, poor, stranger].find(
    (a) => typeof address === "string" && a.address.toLowerCase() === address.toLowerCase(),
  ) ?? prover;

const resignBid: Resigner = async (b) => {
  const quote = b.quote as QuoteJson;
  return { ...b, signature: await signQuote(keyOf(quote.prover), domain, quote) };
};
const resignAuction: Resigner = async (b) => ({
  ...b,
  signature: await signAuction(sequencer, domain, b.auction as AuctionJson),
});
const resignSession: Resigner = async (b) => {
  const login = b.login as WorkerLoginJson;
  return { ...b, signature: await signWorkerLogin(keyOf(login.operator), domain, login) };
};
const resignCancel =
  (blockNumber: string, who: string): Resigner =>
  async (b) => {
    if (!/^\d{1,15}$/.test(blockNumber)) throw new Error("not a block number");
    const signature = await signBidCancellation(keyOf(who), domain, {
      blockNumber: Number(blockNumber),
      prover: who as `0x${string}`,
      issuedAt: b.issuedAt as number,
    });
    return { ...b, signature };
  };

const proofOf = (job: LeasedJob) =>
  simProof({ ...job, children: job.children.map((c) => c.proof) });

beforeAll(async () => {
  stack = await startStack({
    // No rate limits; leases that never lapse during the file; no aggregator loop (ticked by
    // hand once), so nothing changes state in the background between two snapshots.
    env: { RATE_LIMIT_PER_IP: "0", LEASE_MS: "600000" },
    aggregator: false,
  });
  const now = Date.now();
  await stack.admin.deposit(prover.address, 10n ** 30n);
  const open = await openAuction(OPEN_BLOCK, {
    biddingClosesAt: now + 15 * 60_000,
    proofDeadline: now + 30 * 60_000,
  });
  await stack.client.openAuction(open.auction, open.txs, open.signature);
  const first = await signedBid(prover, OPEN_BLOCK, { basisPointFee: 1500 });
  await stack.client.submitBid(first.quote, first.signature);

  const proving = await openAuction(PROVING_BLOCK, {
    txCount: 32,
    biddingClosesAt: Date.now() + 1000,
    proofDeadline: now + 30 * 60_000,
  });
  await stack.client.openAuction(proving.auction, proving.txs, proving.signature);
  const win = await signedBid(prover, PROVING_BLOCK);
  await stack.client.submitBid(win.quote, win.signature);
  await eventually(async () => Date.now() > proving.auction.biddingClosesAt + 20);
  await stack.aggregator.aggregator.tick();
  await eventually(async () => {
    await stack.aggregator.aggregator.tick();
    return (await stack.client.getBlock(PROVING_BLOCK)).stage === "proving";
  });
  mainWorker = await signIn("fz-main");
  fullWorker = await signIn("fz-full");
  fullJob = await eventually(() => leaseFor(fullWorker));
  await ensureMainLease();
  expect(mainJob).not.toBeNull();

  const auctions = await Promise.all(FRESH_BLOCKS.map((n) => openAuction(n)));
  const replay = open.body;
  const foreign = await openAuction(104);
  bases.auction = [
    ...auctions.map((a) => a.body),
    replay,
    { ...foreign.body, signature: await signAuction(stranger, domain, foreign.auction) },
  ] as unknown as Json[];
  bases.bid = (await Promise.all([
    signedBid(prover, OPEN_BLOCK, { basisPointFee: 1000 }),
    signedBid(prover, OPEN_BLOCK, { basisPointFee: 900, bondAmount: "7000" }),
    signedBid(prover, OPEN_BLOCK, { bondAmount: UINT256_MAX.toString() }),
    signedBid(poor, OPEN_BLOCK),
    signedBid(prover, PROVING_BLOCK),
    signedBid(prover, FRESH_BLOCKS[0]!),
    (async () => {
      const quote = { ...first.quote, validUntilSlot: currentSlot() - 10 };
      return { quote, signature: await signQuote(prover, domain, quote) };
    })(),
  ])) as unknown as Json[];
  const cancel = async (block: number, who = prover) => {
    const issuedAt = Date.now();
    const signature = await signBidCancellation(who, domain, {
      blockNumber: block,
      prover: who.address,
      issuedAt,
    });
    return { block, prover: who.address, body: { issuedAt, signature } };
  };
  cancelBases = await Promise.all([
    cancel(OPEN_BLOCK),
    cancel(PROVING_BLOCK),
    cancel(OPEN_BLOCK, poor),
  ]);
  bases.deposit = [
    { prover: prover.address, amount: "1000" },
    { prover: account(0xf4).address, amount: "1" },
  ];
  const login = (workerId: string, hardware: Record<string, number | string>) => ({
    operator: prover.address,
    workerId,
    issuedAt: Date.now(),
    capacity: 4,
    jobTypes: allJobTypes,
    hardware,
  });
  bases.session = (await Promise.all(
    [
      login("fz-new", { cores: 8, memoryMb: 16384, gpus: 1 }),
      login("fz-bare", {}),
      login("fz-extra", { cores: 2, model: "rtx" }),
    ].map(async (l) => ({ login: l, signature: await signWorkerLogin(prover, domain, l) })),
  )) as unknown as Json[];
  bases.lease = [{ waitMs: 0 }, { waitMs: 30_000 }, {}];
  bases.heartbeat = [{}];
  bases.fail = [
    { reason: "out of memory", retryable: true },
    { reason: "gave up", retryable: false },
  ];
}, 60_000);

afterAll(async () => {
  console.log(
    `fuzz: ${requests} requests; statuses ${JSON.stringify(Object.fromEntries([...statuses].sort()))}; codes ${JSON.stringify(Object.fromEntries([...codes].sort()))}`,
  );
  await stack?.close();
});

const property = <T>(arb: fc.Arbitrary<T>, run: (v: T) => Promise<void>, numRuns: number) =>
  fc.assert(fc.asyncProperty(arb, run), { numRuns });

// ---------------------------------------------------------------------------------------------
// The endpoints

describe("fuzzed requests never 5xx, always error in shape, and a refused write changes nothing", () => {
  it("POST /v1/auctions", () =>
    property(
      fc.record({ body: body(6), ct: contentType }),
      async ({ body: spec, ct }) => {
        await exercise({
          method: "POST",
          url: "/v1/auctions",
          ...withBody(ct, await signedBodyText(spec, bases.auction!, resignAuction)),
        });
      },
      50,
    ));

  it("POST /v1/bids", () =>
    property(
      fc.record({ body: body(7), ct: contentType }),
      async ({ body: spec, ct }) => {
        await exercise({
          method: "POST",
          url: "/v1/bids",
          ...withBody(ct, await signedBodyText(spec, bases.bid!, resignBid)),
        });
      },
      70,
    ));

  it("DELETE /v1/bids/:n/:prover", () =>
    property(
      fc.record({
        block: fc.option(numberParam, { freq: 3 }),
        who: fc.option(addressParam, { freq: 3 }),
        body: body(3),
        ct: contentType,
      }),
      async ({ block, who, body: spec, ct }) => {
        // The body's base cancellation also gives the path, unless the path is fuzzed.
        const b = cancelBases["base" in spec ? spec.base % cancelBases.length : 0]!;
        const n = block ? pathPiece(block) : String(b.block);
        const p = who ? pathPiece(who) : b.prover;
        const text = await signedBodyText(
          spec,
          cancelBases.map((c) => c.body),
          resignCancel(block ? block.value : String(b.block), who ? who.value : b.prover),
        );
        await exercise({ method: "DELETE", url: `/v1/bids/${n}/${p}`, ...withBody(ct, text) });
      },
      40,
    ));

  it("POST /v1/admin/deposits, with and without the admin token", () =>
    property(
      fc.record({ auth, body: body(2), ct: contentType }),
      async ({ auth: a, body: spec, ct }) => {
        const req = withBody(ct, bodyText(spec, bases.deposit!));
        await exercise({
          method: "POST",
          url: "/v1/admin/deposits",
          headers: { ...req.headers, ...authHeader(a, ADMIN_TOKEN) },
          payload: req.payload,
        });
      },
      50,
    ));

  it("POST /v1/workers/sessions", () =>
    property(
      fc.record({ body: body(3), ct: contentType }),
      async ({ body: spec, ct }) => {
        await exercise({
          method: "POST",
          url: "/v1/workers/sessions",
          ...withBody(ct, await signedBodyText(spec, bases.session!, resignSession)),
        });
      },
      40,
    ));

  it("POST /v1/jobs/lease (a worker at capacity, junk tokens, no token)", () =>
    property(
      fc.record({ auth, body: body(3), ct: contentType }),
      async ({ auth: a, body: spec, ct }) => {
        // With a valid token this worker is at capacity, so a lease is refused at once (409)
        // whatever waitMs says, instead of long-polling.
        expect(await holds(fullWorker, fullJob)).toBe(true);
        const req = withBody(ct, bodyText(spec, bases.lease!));
        await exercise({
          method: "POST",
          url: "/v1/jobs/lease",
          headers: { ...req.headers, ...authHeader(a, fullWorker.token) },
          payload: req.payload,
        });
      },
      30,
    ));

  const jobId: fc.Arbitrary<{ t: "mine" } | { t: "other" } | { t: "junk"; param: Param }> =
    fc.oneof(
      { weight: 5, arbitrary: fc.constant({ t: "mine" as const }) },
      { weight: 1, arbitrary: fc.constant({ t: "other" as const }) },
      {
        weight: 2,
        arbitrary: fc
          .oneof(
            fc
              .tuple(fc.nat(), fc.nat({ max: 2000 }), fc.nat())
              .map(([b, l, i]) => encoded(`${b}-${l}-${i}`)),
            fc
              .tuple(fc.nat({ max: 6 }), fc.nat({ max: 40 }))
              .map(([l, i]) => encoded(`${PROVING_BLOCK}-${l}-${i}`)),
            fc
              .constantFrom(
                `${PROVING_BLOCK}-0-0`,
                "9999999999-999-9999999",
                "99999999999-0-0",
                "-1-0-0",
                "1e3-0-0",
                "x".repeat(64),
                "x".repeat(65),
                "9".repeat(150),
              )
              .map(encoded),
            fc.string({ maxLength: 70 }).map(encoded),
            fc.constantFrom(...badUrlPieces).map((value) => ({ value, raw: true })),
          )
          .map((param) => ({ t: "junk" as const, param })),
      },
    );

  for (const action of ["heartbeat", "result", "fail"] as const) {
    it(`POST /v1/jobs/:id/${action} (the holder's token, junk tokens, someone else's job)`, () =>
      property(
        fc.record({ auth, id: jobId, body: body(2), ct: contentType }),
        async ({ auth: a, id, body: spec, ct }) => {
          await ensureMainLease();
          const mine = mainJob;
          const target =
            id.t === "mine"
              ? (mine?.id ?? `${PROVING_BLOCK}-0-0`)
              : id.t === "other"
                ? fullJob.id
                : null;
          const path = target ?? pathPiece((id as { param: Param }).param);
          const actionBases =
            action === "result"
              ? [
                  { proof: mine ? proofOf(mine) : `0x${"00".repeat(32)}` },
                  { proof: `0x${"00".repeat(32)}` },
                ]
              : bases[action]!;
          const req = withBody(ct, bodyText(spec, actionBases));
          await exercise({
            method: "POST",
            url: `/v1/jobs/${path}/${action}`,
            headers: { ...req.headers, ...authHeader(a, mainWorker.token) },
            payload: req.payload,
            jobId: target ?? undefined,
          });
        },
        30,
      ));
  }

  const query = fc.array(
    fc.tuple(
      fc.oneof(
        { weight: 5, arbitrary: fc.constantFrom("limit", "cursor", "block", "status") },
        {
          weight: 3,
          arbitrary: fc.constantFrom("prover", "recipient", "operator", "sequencer"),
        },
        { weight: 1, arbitrary: fc.string({ maxLength: 10 }) },
      ),
      fc.oneof(
        numberParam.map((p) => p.value),
        addressParam.map((p) => p.value),
        fc
          .tuple(digits(1, 22), fc.stringMatching(/^[A-Za-z0-9:._x-]{1,20}$/))
          .map(([d, id]) => `${d}_${id}`),
        digits(1, 12),
        fc.constantFrom("open", "committed", "unclaimed", "OPEN", "paid", "", "1", "0", "500"),
        fc.string({ maxLength: 30 }),
      ),
    ),
    { maxLength: 4 },
  );
  const withQuery = (path: string, q: [string, string][]) => {
    const qs = new URLSearchParams(
      q.map(([k, v]): [string, string] => [wellFormed(k), wellFormed(v)]),
    );
    return qs.size > 0 ? `${path}?${qs}` : path;
  };

  it("GET /v1/auctions/:n, /v1/blocks/:n, /v1/blocks/:n/tree, /v1/provers/:a", () =>
    property(
      fc.oneof(
        numberParam.map((n) => `/v1/auctions/${pathPiece(n)}`),
        numberParam.map((n) => `/v1/blocks/${pathPiece(n)}`),
        numberParam.map((n) => `/v1/blocks/${pathPiece(n)}/tree`),
        addressParam.map((a) => `/v1/provers/${pathPiece(a)}`),
      ),
      async (url) => {
        await exercise({ method: "GET", url, headers: {} });
      },
      80,
    ));

  it("GET /v1/data/auctions|bids|payouts|penalties, /v1/workers, /v1/info", () =>
    property(
      fc.record({
        path: fc.constantFrom(
          "/v1/data/auctions",
          "/v1/data/bids",
          "/v1/data/payouts",
          "/v1/data/penalties",
          "/v1/workers",
          "/v1/info",
        ),
        query,
      }),
      async ({ path, query: q }) => {
        await exercise({ method: "GET", url: withQuery(path, q), headers: {} });
      },
      100,
    ));

  it("any endpoint: random JSON, random text, wrong methods, unknown routes", () =>
    property(
      fc.record({
        method: fc.constantFrom<Req["method"]>("GET", "POST", "DELETE", "PUT", "PATCH"),
        path: fc.oneof(
          fc.constantFrom(
            "/v1/auctions",
            `/v1/auctions/${OPEN_BLOCK}`,
            "/v1/bids",
            `/v1/bids/${OPEN_BLOCK}/${prover.address}`,
            `/v1/provers/${prover.address}`,
            "/v1/admin/deposits",
            "/v1/workers/sessions",
            "/v1/jobs/lease",
            "/v1/jobs/x/heartbeat",
            "/v1/jobs/x/result",
            "/v1/jobs/x/fail",
            `/v1/blocks/${PROVING_BLOCK}`,
            `/v1/blocks/${PROVING_BLOCK}/tree`,
            "/v1/data/auctions",
            "/v1/data/bids",
            "/v1/workers",
            "/v1/info",
          ),
          fc.string({ maxLength: 40 }).map((s) => `/${encodeURIComponent(wellFormed(s))}`),
          fc.string({ maxLength: 20 }).map((s) => `/v1/${encodeURIComponent(wellFormed(s))}`),
        ),
        body: fc.oneof(
          jsonValue(4).map((v) => JSON.stringify(v)),
          nonJson,
          fc.constant(undefined),
        ),
        ct: contentType,
      }),
      async ({ method, path, body: text, ct }) => {
        // GET carries no body here (a GET with a body is not something clients send).
        const payload = method === "GET" ? undefined : text;
        await exercise({ method, url: path, ...withBody(ct, payload) });
      },
      40,
    ));
});

// ---------------------------------------------------------------------------------------------
// Regression tests for bugs the fuzz found, deterministic.

async function get(url: string) {
  const res = await stack.relay.app.inject({ method: "GET", url });
  return { status: res.statusCode, body: JSON.parse(res.body) as { error?: unknown } };
}

const contractError = {
  error: {
    code: expect.stringMatching(/^[A-Z_]+$/),
    message: expect.any(String),
    requestId: expect.any(String),
  },
};

describe("regressions found by the fuzz", () => {
  it("a malformed percent-encoding in the path gets the contract's error body", async () => {
    const res = await get("/v1/blocks/%zz");
    expect(res.status).toBe(400);
    expect(res.body).toEqual(contractError);
  });

  it("a path parameter over 100 characters gets the contract's error body", async () => {
    const res = await get(`/v1/blocks/${"9".repeat(150)}`);
    expect(res.status).toBeLessThan(500);
    expect(res.body).toEqual(contractError);
  });

  it("a cursor whose timestamp is past int8 is a 400, not a 500 (data and workers)", async () => {
    for (const path of ["/v1/data/bids", "/v1/data/payouts", "/v1/data/penalties", "/v1/workers"]) {
      const res = await get(`${path}?cursor=99999999999999999999_x`);
      expect(res.status, path).toBe(400);
    }
  });

  it("GET /v1/data/auctions with a block or cursor past int4 is not a 500", async () => {
    for (const q of ["block=2147483648", "cursor=2147483648"]) {
      const res = await get(`/v1/data/auctions?${q}`);
      expect(res.status, q).toBeLessThan(500);
    }
  });

  it("deposits cannot push a balance past uint256 (nor overflow NUMERIC(78,0) into a 500)", async () => {
    const who = account(0xf5).address;
    const statuses: number[] = [];
    for (let i = 0; i < 10; i++) {
      const res = await stack.relay.app.inject({
        method: "POST",
        url: "/v1/admin/deposits",
        headers: { authorization: `Bearer ${ADMIN_TOKEN}` },
        payload: { prover: who, amount: UINT256_MAX.toString() },
      });
      statuses.push(res.statusCode);
    }
    expect(statuses.every((s) => s < 500)).toBe(true);
    const view = await stack.client.getProver(who);
    expect(BigInt(view.collateral.available)).toBeLessThanOrEqual(UINT256_MAX);
  });
});
