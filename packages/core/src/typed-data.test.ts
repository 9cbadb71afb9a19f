import fc from "fast-check";
import { getAddress, hashDomain, hashTypedData } from "viem";
import { privateKeyToAccount } from "viem/accounts";
import { describe, expect, it } from "vitest";
import { recoverSigner } from "./signature.ts";
import { eip712Domain, hashQuote, hashQuoteReference, quoteTypedData } from "./typed-data.ts";

// Aztec's own EpochProofQuote test vector (two-field domain of its first quote contracts).
const aztecDomain = { name: "Aztec Rollup", version: "1" };
const aztecQuote = {
  epochToProve: 42n,
  validUntilSlot: 100n,
  bondAmount: 1_000_000_000_000_000_000n,
  prover: "0xCD2a3d9F938E13CD947Ec05AbC7FE734Df8DD826",
  basisPointFee: 5000,
} as const;
const r = "63e9cf4ee71dcfeae09da434f3e7c2d5c336b7d83b78fbbbe6d1639b206b5b69";
const s = "57b1e46efa6b388c4333c8dd40da6ec25297b6c277fba4f1b42e3b6f1d0ddfde";

describe("EpochProofQuote typed data", () => {
  it("reproduces Aztec's domain separator", () => {
    expect(
      hashDomain({
        domain: eip712Domain(aztecDomain) as { name: string; version: string },
        types: {
          EIP712Domain: [
            { name: "name", type: "string" },
            { name: "version", type: "string" },
          ],
        },
      }),
    ).toBe("0xa5a70ffb22bda94bb24c78bd9ec602157f08294910e13b891f0f17910c9ebe1f");
  });

  it("reproduces Aztec's quote digest", () => {
    expect(hashQuote(aztecDomain, aztecQuote)).toBe(
      "0x6927eba5b70276d7a9ccedac195c01844c8e71b3fdf9f8a5972914e8a2d5911d",
    );
  });

  it.each(["native", "js"] as const)(
    "recovers Aztec's prover from its signature (%s)",
    async (backend) => {
      const digest = hashQuote(aztecDomain, aztecQuote);
      await expect(recoverSigner(digest, `0x${r}${s}1b`, backend)).resolves.toBe(aztecQuote.prover);
      // The same r, s with the other v recovers someone else.
      await expect(recoverSigner(digest, `0x${r}${s}1c`, backend)).resolves.not.toBe(
        aztecQuote.prover,
      );
    },
  );

  it("signs and recovers under the four-field domain, and the domains do not mix", async () => {
    const account = privateKeyToAccount(`0x${"11".repeat(32)}`);
    const full = {
      ...aztecDomain,
      chainId: 31337n,
      verifyingContract: "0x5FbDB2315678afecb367f032d93F642f64180aa3" as const,
    };
    const quote = { ...aztecQuote, prover: account.address };
    const signature = await account.signTypedData(quoteTypedData(full, quote));
    const digest = hashQuote(full, quote);
    expect(digest).toBe(hashTypedData(quoteTypedData(full, quote)));
    await expect(recoverSigner(digest, signature)).resolves.toBe(account.address);
    // Another chain id or contract gives another digest: the same signature names someone else.
    for (const other of [
      { ...full, chainId: 1n },
      { ...full, verifyingContract: `0x${"00".repeat(19)}01` as const },
      aztecDomain,
    ]) {
      const d = hashQuote(other, quote);
      expect(d).not.toBe(digest);
      await expect(recoverSigner(d, signature)).resolves.not.toBe(account.address);
    }
  });
});

describe("hashQuote (direct encoding)", () => {
  const uint256 = fc.bigInt({ min: 0n, max: (1n << 256n) - 1n });
  const address = fc
    .uint8Array({ minLength: 20, maxLength: 20 })
    .map((b) => getAddress(`0x${Buffer.from(b).toString("hex")}`));
  const domain = fc.record(
    {
      name: fc.string({ maxLength: 40 }),
      version: fc.string({ maxLength: 8 }),
      chainId: fc.option(fc.bigInt({ min: 0n, max: (1n << 64n) - 1n }), { nil: undefined }),
      verifyingContract: fc.option(address, { nil: undefined }),
    },
    { requiredKeys: ["name", "version"] },
  );
  const quote = fc.record({
    epochToProve: uint256,
    validUntilSlot: uint256,
    bondAmount: uint256,
    prover: fc.oneof(
      address,
      address.map((a) => a.toLowerCase() as `0x${string}`),
    ),
    basisPointFee: fc.integer({ min: 0, max: 0xffffffff }),
  });

  it("equals viem's hashTypedData on random quotes and domains", () => {
    fc.assert(
      fc.property(domain, quote, (d, q) => {
        expect(hashQuote(d, q)).toBe(hashQuoteReference(d, q));
      }),
      { numRuns: 2000 },
    );
  });

  it("refuses what viem refuses: out-of-range numbers and a bad address checksum", () => {
    const ok = { ...aztecQuote };
    for (const bad of [
      { ...ok, bondAmount: 1n << 256n },
      { ...ok, epochToProve: -1n },
      { ...ok, basisPointFee: 2 ** 32 },
      { ...ok, prover: "0xcD2a3d9F938E13CD947Ec05AbC7FE734Df8DD826" as const },
    ]) {
      expect(() => hashQuoteReference(aztecDomain, bad)).toThrow();
      expect(() => hashQuote(aztecDomain, bad)).toThrow();
    }
  });
});
