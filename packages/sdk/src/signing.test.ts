// The signing helpers sign exactly the message they return, and a cancellation is never dated
// ahead of the signer's clock (the relay refuses any issuedAt ahead of its own).
import { bidCancellationMessage } from "@prover-boost/contract";
import { bidCancellationTypedData } from "@prover-boost/core";
import { recoverTypedDataAddress } from "viem";
import { privateKeyToAccount } from "viem/accounts";
import { describe, expect, it } from "vitest";
import { CANCELLATION_CLOCK_MARGIN_MS, signedBidCancellation } from "./signing.ts";

const prover = privateKeyToAccount(`0x${"07".repeat(32)}`);
const domain = {
  name: "Aztec Rollup",
  version: "1",
  chainId: 31337,
  verifyingContract: "0x00000000000000000000000000000000000000b0" as const,
};
const bidId = `0x${"ab".repeat(32)}` as const;

describe("signedBidCancellation", () => {
  it("dates the cancellation behind the signer's clock and signs that issuedAt", async () => {
    const from = Date.now();
    const body = await signedBidCancellation(prover, domain, { bidId, prover: prover.address });
    expect(body.bidId).toBe(bidId);
    expect(body.issuedAt).toBeLessThanOrEqual(Date.now() - CANCELLATION_CLOCK_MARGIN_MS);
    expect(body.issuedAt).toBeGreaterThanOrEqual(from - CANCELLATION_CLOCK_MARGIN_MS);
    const signer = await recoverTypedDataAddress({
      ...bidCancellationTypedData(
        domain,
        bidCancellationMessage({ bidId, prover: prover.address, issuedAt: body.issuedAt }),
      ),
      signature: body.signature as `0x${string}`,
    });
    expect(signer).toBe(prover.address);
  });

  it("keeps an explicit issuedAt", async () => {
    const body = await signedBidCancellation(prover, domain, {
      bidId,
      prover: prover.address,
      issuedAt: 1_700_000_000_000,
    });
    expect(body.issuedAt).toBe(1_700_000_000_000);
  });
});
