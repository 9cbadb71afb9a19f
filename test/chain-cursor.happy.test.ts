// The escrow index's cursor keeps the L1's chain id whole: EIP-155 ids beyond 2^31 - 1 exist,
// and a cursor that could not be written would keep chain mode from ever becoming ready.
// On real Postgres.
import { describe, expect, it } from "vitest";
import { useLedgerDb } from "./support/ledger-db.ts";

const ledger = useLedgerDb();

describe("the escrow index's cursor", () => {
  it("keeps a chain id past 2^32", async () => {
    const chainId = 2n ** 32n + 7n;
    await ledger.db.prisma.chainCursor.create({
      data: {
        escrow: "0x00000000000000000000000000000000000000e5",
        chainId,
        genesisHash: `0x${"11".repeat(32)}`,
        block: -1n,
        blockHash: null,
        updatedAt: 0n,
      },
    });
    const row = await ledger.db.prisma.chainCursor.findFirstOrThrow();
    expect(row.chainId).toBe(chainId);
  });
});
