// fast-check arbitraries for the rest of a request in the relay fuzz (test/fuzz-*.security.test.ts):
// path parameters (block numbers, addresses, job ids; some with malformed percent-encodings), query
// strings for the list endpoints, and bearer headers (the right token, variants of it, junk or
// none). Bodies are in fuzz-bodies.ts.
import fc from "fast-check";
import { digits, hex } from "./fuzz-bodies.ts";
import { OPEN_BLOCK, PROVING_BLOCK, prover } from "./fuzz-stack.ts";

export interface Param {
  value: string;
  /** Put into the URL as is (only a few malformed percent-encodings), else percent-encoded. */
  raw: boolean;
}
const encoded = (value: string): Param => ({ value, raw: false });
const badUrlPieces = ["%", "%zz", "%E0%A4%A", "%00", "..", "%2F"];

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

// ---------------------------------------------------------------------------------------------
// Strict-input classes (test/fuzz-strict.security.test.ts): each arbitrary also says what the
// relay must answer, so the property checks the verdict and not only the error's shape.

const flipLetter = (c: string) => (c === c.toLowerCase() ? c.toUpperCase() : c.toLowerCase());

/**
 * Casings of a checksummed address: letters flipped at random, or one case throughout. `valid`
 * when it carries no checksum (one case) or the right one.
 */
export const addressCasing = (checksummed: string) =>
  fc
    .oneof(
      fc
        .array(fc.boolean(), { minLength: 40, maxLength: 40 })
        .map(
          (flips) =>
            `0x${[...checksummed.slice(2)].map((c, i) => (flips[i] ? flipLetter(c) : c)).join("")}`,
        ),
      fc.nat({ max: 39 }).map((i) => {
        const d = checksummed.slice(2);
        return `0x${d.slice(0, i)}${flipLetter(d[i]!)}${d.slice(i + 1)}`;
      }),
      fc.constantFrom(
        checksummed,
        checksummed.toLowerCase(),
        `0x${checksummed.slice(2).toUpperCase()}`,
      ),
    )
    .map((value) => {
      const d = value.slice(2);
      return {
        value,
        valid: d === d.toLowerCase() || d === d.toUpperCase() || value === checksummed,
      };
    });

/** Text that reads as the integer `n` somewhere but is not its canonical decimal. */
export const nonCanonicalInt = (n: number): fc.Arbitrary<string> =>
  fc.oneof(
    fc.integer({ min: 1, max: 4 }).map((k) => `${"0".repeat(k)}${n}`),
    fc.constantFrom(" ", "\t", "\n", "+", "-", "\u00a0").map((p) => `${p}${n}`),
    fc.constantFrom(" ", "\t", "\n", ".0", ".", "e0", "E0", "n", "_0").map((s) => `${n}${s}`),
    fc.constantFrom(
      `0x${n.toString(16)}`,
      `0X${n.toString(16)}`,
      `0o${n.toString(8)}`,
      `0b${n.toString(2)}`,
    ),
    fc.constant(n >= 10 && n % 10 === 0 ? `${n / 10}e1` : `${n}e0`),
    fc.constant(String(n).replace(/[0-9]/g, (d) => String.fromCharCode(0x660 + Number(d)))),
    fc.constant(`${n}`.padStart(20, "0")),
  );

/** The integer `n` as canonical decimal, or a non-canonical spelling of it. */
export const intSpelling = (n: number) =>
  fc.oneof(
    fc.constant({ text: String(n), canonical: true }),
    nonCanonicalInt(n).map((text) => ({ text, canonical: false })),
  );

/** A uint field as a JSON number, its canonical decimal string, or a non-canonical string. */
export const uintField = (n: number) =>
  fc.oneof(
    fc.constant({ value: n as number | string, canonical: true }),
    fc.constant({ value: String(n) as number | string, canonical: true }),
    nonCanonicalInt(n).map((value) => ({ value: value as number | string, canonical: false })),
  );
