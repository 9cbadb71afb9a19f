// fast-check arbitraries of the relay fuzz (test/fuzz-*.security.test.ts): mutations of valid
// bodies (huge or negative numbers, hex garbage, unicode, wrong types, extra and prototype keys,
// deep nesting, long strings), whole bodies (mutated, truncated, random JSON, non-JSON, absent),
// content types, path parameters, query strings, job ids and bearer headers. Shared so that every
// fuzz file draws its requests from the same distributions.
import fc from "fast-check";
import type { BodySpec, Json, Mutation, Op } from "./fuzz-mutations.ts";
import { OPEN_BLOCK, PROVING_BLOCK, prover, UINT256_MAX } from "./fuzz-stack.ts";

const set = (value: Json): Op => ({ t: "set", value });
const raw = (text: string): Op => ({ t: "raw", text });
const hexUnit = fc.constantFrom(..."0123456789abcdefABCDEF");
const hex = (minLength: number, maxLength: number) =>
  fc.string({ unit: hexUnit, minLength, maxLength });
const digits = (minLength: number, maxLength: number) =>
  fc.string({ unit: fc.constantFrom(..."0123456789"), minLength, maxLength });
export const jsonValue = (maxDepth = 2) => fc.jsonValue({ maxDepth }) as fc.Arbitrary<Json>;

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

export const nonJson: fc.Arbitrary<string> = fc.oneof(
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

export const body = (n: number): fc.Arbitrary<BodySpec> =>
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

export const contentType: fc.Arbitrary<string | null> = fc.oneof(
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

export interface Param {
  value: string;
  /** Put into the URL as is (only a few malformed percent-encodings), else percent-encoded. */
  raw: boolean;
}
export const encoded = (value: string): Param => ({ value, raw: false });
export const badUrlPieces = ["%", "%zz", "%E0%A4%A", "%00", "..", "%2F"];

export const numberParam: fc.Arbitrary<Param> = fc.oneof(
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

export const addressParam: fc.Arbitrary<Param> = fc.oneof(
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
export const wellFormed = (s: string) =>
  s.replace(/[\ud800-\udbff](?![\udc00-\udfff])|(?<![\ud800-\udbff])[\udc00-\udfff]/g, "\ufffd");

export const pathPiece = (p: Param) => (p.raw ? p.value : encodeURIComponent(wellFormed(p.value)));

type Auth =
  | { t: "none" }
  | { t: "valid" }
  | { t: "variant"; variant: "lower" | "bare" | "double" | "suffix" | "prefix" | "trailing" }
  | { t: "junk"; header: string };

export const auth: fc.Arbitrary<Auth> = fc.oneof(
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

export function authHeader(a: Auth, token: string): Record<string, string> {
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

/** A job id: the holder's own job, another worker's, or junk (possibly malformed in the URL). */
export const jobId: fc.Arbitrary<{ t: "mine" } | { t: "other" } | { t: "junk"; param: Param }> =
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

/** Query strings for the list endpoints: known keys and values near their limits, and noise. */
export const query = fc.array(
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
export const withQuery = (path: string, q: [string, string][]) => {
  const qs = new URLSearchParams(
    q.map(([k, v]): [string, string] => [wellFormed(k), wellFormed(v)]),
  );
  return qs.size > 0 ? `${path}?${qs}` : path;
};
