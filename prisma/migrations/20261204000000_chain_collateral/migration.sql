-- COLLATERAL=chain. The relay indexes the escrow contract's events into the ledger and the
-- aggregator sends settlement transactions to it.
--   ChainCursor  where the indexer stands: chain id, genesis hash, last block indexed and its hash
--   ChainLog     every indexed event, keyed by block hash and log index (credited once); a log
--                whose block left the chain is marked removed and its movement reversed
--   Settlement   the transactions owed to the escrow (lock, release, slash, settle), written with
--                the ledger movement they mirror and sent in id order
CREATE TABLE "ChainCursor" (
    "escrow" TEXT NOT NULL,
    "chainId" INTEGER NOT NULL,
    "genesisHash" TEXT NOT NULL,
    "block" BIGINT NOT NULL,
    "blockHash" TEXT,
    "updatedAt" BIGINT NOT NULL,
    CONSTRAINT "ChainCursor_pkey" PRIMARY KEY ("escrow")
);

CREATE TABLE "ChainLog" (
    "id" TEXT NOT NULL,
    "escrow" TEXT NOT NULL,
    "blockNumber" BIGINT NOT NULL,
    "blockHash" TEXT NOT NULL,
    "logIndex" INTEGER NOT NULL,
    "txHash" TEXT NOT NULL,
    "event" TEXT NOT NULL,
    "args" JSONB NOT NULL,
    "movementId" TEXT,
    "removed" BOOLEAN NOT NULL DEFAULT false,
    "createdAt" BIGINT NOT NULL,
    CONSTRAINT "ChainLog_pkey" PRIMARY KEY ("id")
);
CREATE INDEX "ChainLog_escrow_removed_blockNumber_idx" ON "ChainLog"("escrow", "removed", "blockNumber");

CREATE TABLE "Settlement" (
    "id" BIGSERIAL NOT NULL,
    "key" TEXT NOT NULL,
    "kind" TEXT NOT NULL,
    "blockNumber" INTEGER NOT NULL,
    "args" JSONB NOT NULL,
    "status" TEXT NOT NULL DEFAULT 'pending',
    "txHash" TEXT,
    "nonce" INTEGER,
    "attempts" INTEGER NOT NULL DEFAULT 0,
    "nextAttemptAt" BIGINT NOT NULL,
    "errorCode" TEXT,
    "error" TEXT,
    "receiptBlock" BIGINT,
    "gasUsed" DECIMAL(78,0),
    "createdAt" BIGINT NOT NULL,
    "updatedAt" BIGINT NOT NULL,
    CONSTRAINT "Settlement_pkey" PRIMARY KEY ("id")
);
CREATE UNIQUE INDEX "Settlement_key_key" ON "Settlement"("key");
CREATE INDEX "Settlement_status_id_idx" ON "Settlement"("status", "id");
CREATE INDEX "Settlement_blockNumber_idx" ON "Settlement"("blockNumber");
