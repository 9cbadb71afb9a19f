// fast-check arbitraries for request bodies in the relay fuzz (test/fuzz-*.security.test.ts):
// mutations of valid bodies (huge or negative numbers, hex garbage, unicode, wrong types, extra
// and prototype keys, deep nesting, long strings), whole bodies (mutated, truncated, random JSON,
// non-JSON, absent) and content types. Shared so that every fuzz file draws its bodies from the
// same distributions. Path parameters, query strings and bearer headers are in fuzz-params.ts.
import fc from "fast-check";
import type { BodySpec, Json, Mutation, Op } from "./fuzz-mutations.ts";
import { UINT256_MAX } from "./fuzz-stack.ts";

const set = (value: Json): Op => ({ t: "set", value });
const raw = (text: string): Op => ({ t: "raw", text });
const hexUnit = fc.constantFrom(..."0123456789abcdefABCDEF");
export const hex = (minLength: number, maxLength: number) =>
  fc.string({ unit: hexUnit, minLength, maxLength });
export const digits = (minLength: number, maxLength: number) =>
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
