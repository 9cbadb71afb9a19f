import { errorStatus } from "@prover-boost/contract";
import fc from "fast-check";
import {
  type Address,
  bytesToHex,
  getAddress,
  type Hex,
  hexToBigInt,
  keccak256,
  recoverAddress,
} from "viem";
import { privateKeyToAccount } from "viem/accounts";
import { describe, expect, it } from "vitest";
import { DomainError, type ErrorCode, isDomainError, isProverBoostError } from "./errors.ts";
import {
  activeSignatureBackend,
  loadNativeSecp256k1,
  parseSignature,
  recoverSigner,
  type SignatureBackend,
} from "./signature.ts";
import {
  type DomainConfig,
  type EpochProofQuote,
  hashQuote,
  quoteTypedData,
} from "./typed-data.ts";

const N = 0xfffffffffffffffffffffffffffffffebaaedce6af48a03bbfd25e8cd0364141n;
const HALF_N = N / 2n; // floor(n / 2); n is odd
const SIGNING_TIMEOUT = 300_000;

const word = (n: bigint): string => n.toString(16).padStart(64, "0");
const sigOf = (r: bigint, s: bigint, v: number): string =>
  `0x${word(r)}${word(s)}${v.toString(16).padStart(2, "0")}`;

// A fixed key and digest with a known-good signature (viem signs low-s, v in {27, 28}).
const account = privateKeyToAccount(`0x${"11".repeat(32)}`);
const digest = keccak256("0x70726f7665722d626f6f7374"); // keccak256("prover-boost")
const good = await account.sign({ hash: digest });
const goodR = hexToBigInt(`0x${good.slice(2, 66)}`);
const goodS = hexToBigInt(`0x${good.slice(66, 130)}`);
const goodV = Number.parseInt(good.slice(130), 16);

function domainCode(fn: () => unknown): ErrorCode | "no error" {
  try {
    fn();
  } catch (err) {
    if (isDomainError(err)) return err.code;
    throw err;
  }
  return "no error";
}

type Outcome = { ok: true; address: Address } | { ok: false; code: string };

async function outcome(hash: Hex, sig: string, backend: SignatureBackend): Promise<Outcome> {
  try {
    return { ok: true, address: await recoverSigner(hash, sig, backend) };
  } catch (err) {
    return {
      ok: false,
      code: isProverBoostError(err) ? err.code : `not a ProverBoostError: ${String(err)}`,
    };
  }
}

describe("the fixture", () => {
  it("is a canonical signature", () => {
    expect(good).toMatch(/^0x[0-9a-f]{130}$/);
    expect([27, 28]).toContain(goodV);
    expect(goodS <= HALF_N).toBe(true);
  });

  it("has the native binding available on this platform", () => {
    expect(loadNativeSecp256k1()).not.toBeNull();
    expect(loadNativeSecp256k1()).toBe(loadNativeSecp256k1());
    expect(activeSignatureBackend()).toBe("native");
  });
});

describe("parseSignature", () => {
  it("splits a good signature into r, s, recovery and compact bytes", () => {
    const parsed = parseSignature(good);
    expect(parsed.r).toBe(goodR);
    expect(parsed.s).toBe(goodS);
    expect(parsed.recovery).toBe(goodV - 27);
    expect(bytesToHex(parsed.compact)).toBe(good.slice(0, 130));
    expect(parsed.compact).toHaveLength(64);
  });

  it("maps v 27 to recovery 0 and v 28 to recovery 1", () => {
    expect(parseSignature(sigOf(1n, 1n, 27)).recovery).toBe(0);
    expect(parseSignature(sigOf(1n, 1n, 28)).recovery).toBe(1);
  });

  it("accepts upper-case and mixed-case hex digits", () => {
    const upper = `0x${good.slice(2).toUpperCase()}`;
    expect(parseSignature(upper)).toEqual(parseSignature(good));
  });

  it("accepts the extremes of the valid range: r = 1, r = n - 1, s = 1, s = floor(n / 2)", () => {
    expect(parseSignature(sigOf(1n, 1n, 27)).r).toBe(1n);
    expect(parseSignature(sigOf(N - 1n, 1n, 27)).r).toBe(N - 1n);
    expect(parseSignature(sigOf(1n, HALF_N, 28)).s).toBe(HALF_N);
  });

  const body = good.slice(2);
  const refused: [string, string][] = [
    ["64 bytes", `0x${body.slice(0, 128)}`],
    ["66 bytes", `0x${body}00`],
    ["empty", ""],
    ["just 0x", "0x"],
    ["no 0x prefix", body],
    ["an upper-case 0X prefix", `0X${body}`],
    ["a non-hex digit", `0x${body.slice(0, 10)}g${body.slice(11)}`],
    ["a non-hex v", `0x${body.slice(0, 128)}zz`],
    ["whitespace", `0x${body.slice(0, 129)} `],
    ["a leading space", ` ${good}`],
    ["v = 0", sigOf(goodR, goodS, 0)],
    ["v = 1", sigOf(goodR, goodS, 1)],
    ["v = 29", sigOf(goodR, goodS, 29)],
    ["v = 26", sigOf(goodR, goodS, 26)],
    ["v = 255", sigOf(goodR, goodS, 255)],
    ["r = 0", sigOf(0n, goodS, 27)],
    ["s = 0", sigOf(goodR, 0n, 27)],
    ["r = n", sigOf(N, goodS, 27)],
    ["r = n + 1", sigOf(N + 1n, goodS, 27)],
    ["r = 2^256 - 1", sigOf(2n ** 256n - 1n, goodS, 27)],
    ["s = n", sigOf(goodR, N, 27)],
    ["s = 2^256 - 1", sigOf(goodR, 2n ** 256n - 1n, 27)],
    ["high s = floor(n / 2) + 1", sigOf(goodR, HALF_N + 1n, 27)],
    ["high s = n - 1", sigOf(goodR, N - 1n, 28)],
    ["the malleable twin (n - s, v flipped)", sigOf(goodR, N - goodS, goodV === 27 ? 28 : 27)],
  ];

  it.each(refused)("refuses %s with BAD_SIGNATURE", (_, sig) => {
    let caught: unknown;
    try {
      parseSignature(sig);
    } catch (err) {
      caught = err;
    }
    expect(caught).toBeInstanceOf(DomainError);
    expect((caught as DomainError).code).toBe("BAD_SIGNATURE");
    expect(errorStatus[(caught as DomainError).code]).toBe(401);
  });

  it.each(refused)("makes both backends refuse %s with BAD_SIGNATURE", async (_, sig) => {
    expect(await outcome(digest, sig, "native")).toEqual({ ok: false, code: "BAD_SIGNATURE" });
    expect(await outcome(digest, sig, "js")).toEqual({ ok: false, code: "BAD_SIGNATURE" });
  });
});

describe("recoverSigner", () => {
  it.each(["native", "js", undefined] as const)("recovers the signer (backend %s)", async (b) => {
    await expect(recoverSigner(digest, good, b)).resolves.toBe(account.address);
  });

  it.each(["native", "js"] as const)("returns a checksummed address (%s)", async (b) => {
    const address = await recoverSigner(digest, good, b);
    expect(address).toBe(getAddress(address.toLowerCase()));
  });

  it.each(["native", "js"] as const)(
    "accepts an upper-case digest and signature (%s)",
    async (b) => {
      const upperDigest: Hex = `0x${digest.slice(2).toUpperCase()}`;
      const upperSig = `0x${good.slice(2).toUpperCase()}`;
      await expect(recoverSigner(upperDigest, upperSig, b)).resolves.toBe(account.address);
    },
  );

  it.each(["native", "js"] as const)("recovers someone else for another digest (%s)", async (b) => {
    const other = keccak256("0x00");
    const address = await recoverSigner(other, good, b);
    expect(address).not.toBe(account.address);
    expect(address).toBe(await recoverSigner(other, good, b === "js" ? "native" : "js"));
  });

  it.each([
    ["too short", "0x1234"],
    ["33 bytes", `0x${"ab".repeat(33)}`],
    ["no prefix", "ab".repeat(32)],
    ["non-hex", `0x${"zz".repeat(32)}`],
  ])("refuses a digest that is %s as an internal error", async (_, bad) => {
    for (const b of ["native", "js"] as const) {
      expect(await outcome(bad as Hex, good, b)).toEqual({ ok: false, code: "INTERNAL" });
      // The digest is checked before the signature.
      expect(await outcome(bad as Hex, "0x", b)).toEqual({ ok: false, code: "INTERNAL" });
    }
  });

  it("makes both backends refuse an r that is not the x of any curve point", async () => {
    // x = 5: 5^3 + 7 = 132 is not a square mod p, so no point has x = 5.
    for (const v of [27, 28]) {
      const sig = sigOf(5n, 1n, v);
      expect(domainCode(() => parseSignature(sig))).toBe("no error");
      expect(await outcome(digest, sig, "native")).toEqual({ ok: false, code: "BAD_SIGNATURE" });
      expect(await outcome(digest, sig, "js")).toEqual({ ok: false, code: "BAD_SIGNATURE" });
    }
  });

  it("makes both backends recover the same key from an arbitrary valid (r, s)", async () => {
    // x = 1 is on the curve (1 + 7 = 8 is a square mod p).
    for (const v of [27, 28]) {
      const sig = sigOf(1n, 1n, v);
      const native = await outcome(digest, sig, "native");
      expect(native.ok).toBe(true);
      expect(await outcome(digest, sig, "js")).toEqual(native);
    }
  });

  it("refuses the malleable twin that lenient recovery would accept", async () => {
    const twin = sigOf(goodR, N - goodS, goodV === 27 ? 28 : 27) as Hex;
    // viem alone accepts the twin and names the same signer: that is what must be refused.
    await expect(recoverAddress({ hash: digest, signature: twin })).resolves.toBe(account.address);
    for (const b of ["native", "js"] as const) {
      expect(await outcome(digest, twin, b)).toEqual({ ok: false, code: "BAD_SIGNATURE" });
    }
  });
});

// ---------------------------------------------------------------------------------------------
// Backend equivalence over random keys, quotes and mutated signatures.
// ---------------------------------------------------------------------------------------------

const bytesToKey = (bytes: Uint8Array): bigint => hexToBigInt(bytesToHex(bytes));
const privateKeyArb = fc
  .oneof(
    { weight: 8, arbitrary: fc.uint8Array({ minLength: 32, maxLength: 32 }).map(bytesToKey) },
    { weight: 1, arbitrary: fc.constantFrom(1n, 2n, N - 1n, N - 2n, HALF_N, 2n ** 255n) },
  )
  .filter((k) => k > 0n && k < N)
  .map((k): Hex => `0x${word(k)}`);

const uint256 = fc.oneof(
  fc.bigInt({ min: 0n, max: 1000n }),
  fc.bigInt({ min: 0n, max: 2n ** 256n - 1n }),
);
const quoteArb = fc.record({
  epochToProve: uint256,
  validUntilSlot: uint256,
  bondAmount: uint256,
  prover: fc.uint8Array({ minLength: 20, maxLength: 20 }).map((b) => getAddress(bytesToHex(b))),
  basisPointFee: fc.integer({ min: 0, max: 10_000 }),
}) as fc.Arbitrary<EpochProofQuote>;

const domainArb = fc.constantFrom<DomainConfig>(
  { name: "Aztec Rollup", version: "1" },
  {
    name: "Aztec Rollup",
    version: "1",
    chainId: 31337n,
    verifyingContract: "0x5FbDB2315678afecb367f032d93F642f64180aa3",
  },
);

type Mutation =
  | { kind: "flip"; byte: number; mask: number }
  | { kind: "v"; v: number }
  | { kind: "swapV" }
  | { kind: "highS" }
  | { kind: "truncate"; bytes: number }
  | { kind: "extend"; extra: string };

const mutationArb: fc.Arbitrary<Mutation> = fc.oneof(
  fc.record({
    kind: fc.constant("flip" as const),
    byte: fc.integer({ min: 0, max: 64 }),
    mask: fc.integer({ min: 1, max: 255 }),
  }),
  fc.record({ kind: fc.constant("v" as const), v: fc.integer({ min: 0, max: 255 }) }),
  fc.constant({ kind: "swapV" as const }),
  fc.constant({ kind: "highS" as const }),
  fc.record({ kind: fc.constant("truncate" as const), bytes: fc.integer({ min: 0, max: 64 }) }),
  fc.record({
    kind: fc.constant("extend" as const),
    extra: fc.uint8Array({ minLength: 1, maxLength: 2 }).map((b) => bytesToHex(b).slice(2)),
  }),
);

function mutate(sig: Hex, m: Mutation): string {
  const bytes = Buffer.from(sig.slice(2), "hex");
  const r = hexToBigInt(`0x${sig.slice(2, 66)}`);
  const s = hexToBigInt(`0x${sig.slice(66, 130)}`);
  const v = bytes[64]!;
  switch (m.kind) {
    case "flip":
      bytes[m.byte] = bytes[m.byte]! ^ m.mask;
      return `0x${bytes.toString("hex")}`;
    case "v":
      return sigOf(r, s, m.v);
    case "swapV":
      return sigOf(r, s, v === 27 ? 28 : 27);
    case "highS":
      return sigOf(r, N - s, v === 27 ? 28 : 27);
    case "truncate":
      return `0x${bytes.subarray(0, m.bytes).toString("hex")}`;
    case "extend":
      return `${sig}${m.extra}`;
  }
}

describe("native and js backends agree", () => {
  it(
    "on random keys signing random quotes, and on every mutation of those signatures",
    async () => {
      await fc.assert(
        fc.asyncProperty(
          privateKeyArb,
          quoteArb,
          domainArb,
          fc.array(mutationArb, { minLength: 1, maxLength: 3 }),
          async (pk, quote, domain, mutations) => {
            const signer = privateKeyToAccount(pk);
            const sig = await signer.signTypedData(quoteTypedData(domain, quote));
            const hash = hashQuote(domain, quote);

            expect(parseSignature(sig).s <= HALF_N).toBe(true);
            const native = await recoverSigner(hash, sig, "native");
            const js = await recoverSigner(hash, sig, "js");
            expect(native).toBe(signer.address);
            expect(js).toBe(signer.address);

            for (const m of mutations) {
              const mutated = mutate(sig, m);
              const a = await outcome(hash, mutated, "native");
              const b = await outcome(hash, mutated, "js");
              expect(a, `${m.kind}: ${mutated}`).toEqual(b);
              if (!a.ok) expect(a.code).toBe("BAD_SIGNATURE");
              if (m.kind === "highS" || m.kind === "truncate" || m.kind === "extend") {
                expect(a).toEqual({ ok: false, code: "BAD_SIGNATURE" });
              }
              if (m.kind === "swapV") {
                // The other recovery id is still a valid point, but a different key.
                expect(a.ok).toBe(true);
                if (a.ok) expect(a.address).not.toBe(signer.address);
              }
              if (m.kind === "v" && m.v !== 27 && m.v !== 28) {
                expect(a).toEqual({ ok: false, code: "BAD_SIGNATURE" });
              }
            }
          },
        ),
        { numRuns: 200 },
      );
    },
    SIGNING_TIMEOUT,
  );

  it(
    "on random (r, s, v) triples, valid or not",
    async () => {
      const scalar = fc.oneof(
        fc.bigInt({ min: 0n, max: 2n ** 256n - 1n }),
        fc.bigInt({ min: 0n, max: 8n }),
        fc.bigInt({ min: HALF_N - 2n, max: HALF_N + 2n }),
        fc.bigInt({ min: N - 2n, max: N + 2n }),
      );
      await fc.assert(
        fc.asyncProperty(
          scalar,
          scalar,
          fc.constantFrom(0, 1, 26, 27, 28, 29),
          fc.uint8Array({ minLength: 32, maxLength: 32 }),
          async (r, s, v, digestBytes) => {
            const hash = bytesToHex(digestBytes);
            const sig = sigOf(r, s, v);
            const a = await outcome(hash, sig, "native");
            const b = await outcome(hash, sig, "js");
            expect(a, sig).toEqual(b);
            const canonical = r > 0n && r < N && s > 0n && s <= HALF_N && (v === 27 || v === 28);
            if (!canonical) expect(a).toEqual({ ok: false, code: "BAD_SIGNATURE" });
            if (!a.ok) expect(a.code).toBe("BAD_SIGNATURE");
          },
        ),
        { numRuns: 300 },
      );
    },
    SIGNING_TIMEOUT,
  );
});
