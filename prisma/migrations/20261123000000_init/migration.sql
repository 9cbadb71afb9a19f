-- CreateTable
CREATE TABLE "Auction" (
    "blockNumber" INTEGER NOT NULL,
    "slot" BIGINT NOT NULL,
    "txCount" INTEGER NOT NULL,
    "txsHash" TEXT NOT NULL,
    "txs" TEXT[],
    "blockReward" DECIMAL(78,0) NOT NULL,
    "minBond" DECIMAL(78,0) NOT NULL,
    "maxFeeBps" INTEGER NOT NULL,
    "biddingClosesAt" BIGINT NOT NULL,
    "proofDeadline" BIGINT NOT NULL,
    "sequencer" TEXT NOT NULL,
    "signature" TEXT NOT NULL,
    "status" TEXT NOT NULL DEFAULT 'open',
    "winnerBidId" TEXT,
    "settlementFeeBps" INTEGER,
    "closedAt" BIGINT,
    "createdAt" BIGINT NOT NULL,

    CONSTRAINT "Auction_pkey" PRIMARY KEY ("blockNumber")
);

-- CreateTable
CREATE TABLE "Bid" (
    "id" TEXT NOT NULL,
    "seq" BIGSERIAL NOT NULL,
    "blockNumber" INTEGER NOT NULL,
    "prover" TEXT NOT NULL,
    "validUntilSlot" BIGINT NOT NULL,
    "bondAmount" DECIMAL(78,0) NOT NULL,
    "basisPointFee" INTEGER NOT NULL,
    "signature" TEXT NOT NULL,
    "status" TEXT NOT NULL DEFAULT 'active',
    "createdAt" BIGINT NOT NULL,

    CONSTRAINT "Bid_pkey" PRIMARY KEY ("id")
);

-- CreateTable
CREATE TABLE "Prover" (
    "address" TEXT NOT NULL,
    "createdAt" BIGINT NOT NULL,

    CONSTRAINT "Prover_pkey" PRIMARY KEY ("address")
);

-- CreateTable
CREATE TABLE "LedgerEntry" (
    "id" BIGSERIAL NOT NULL,
    "movementId" TEXT NOT NULL,
    "kind" TEXT NOT NULL,
    "account" TEXT NOT NULL,
    "amount" DECIMAL(78,0) NOT NULL,
    "blockNumber" INTEGER,
    "ref" TEXT,
    "createdAt" BIGINT NOT NULL,

    CONSTRAINT "LedgerEntry_pkey" PRIMARY KEY ("id")
);

-- CreateTable
CREATE TABLE "AccountBalance" (
    "account" TEXT NOT NULL,
    "balance" DECIMAL(78,0) NOT NULL,

    CONSTRAINT "AccountBalance_pkey" PRIMARY KEY ("account")
);

-- CreateTable
CREATE TABLE "Block" (
    "number" INTEGER NOT NULL,
    "stage" TEXT NOT NULL,
    "stages" JSONB NOT NULL,
    "winner" TEXT,
    "feeBps" INTEGER,
    "bondAmount" DECIMAL(78,0),
    "rootProof" TEXT,
    "jobsTotal" INTEGER NOT NULL DEFAULT 0,
    "jobsProven" INTEGER NOT NULL DEFAULT 0,
    "updatedAt" BIGINT NOT NULL,

    CONSTRAINT "Block_pkey" PRIMARY KEY ("number")
);

-- CreateTable
CREATE TABLE "ProofJob" (
    "id" TEXT NOT NULL,
    "blockNumber" INTEGER NOT NULL,
    "type" TEXT NOT NULL,
    "level" INTEGER NOT NULL,
    "index" INTEGER NOT NULL,
    "parentId" TEXT,
    "childIds" TEXT[],
    "inputs" JSONB NOT NULL,
    "status" TEXT NOT NULL DEFAULT 'queued',
    "proof" TEXT,
    "operator" TEXT,
    "workerId" TEXT,
    "attempts" INTEGER NOT NULL DEFAULT 0,
    "provenAt" BIGINT,

    CONSTRAINT "ProofJob_pkey" PRIMARY KEY ("id")
);

-- CreateTable
CREATE TABLE "WorkerSession" (
    "id" TEXT NOT NULL,
    "tokenHash" TEXT NOT NULL,
    "operator" TEXT NOT NULL,
    "workerName" TEXT NOT NULL,
    "capacity" INTEGER NOT NULL,
    "jobTypes" TEXT[],
    "hardware" JSONB NOT NULL,
    "issuedAt" BIGINT NOT NULL,
    "expiresAt" BIGINT NOT NULL,
    "createdAt" BIGINT NOT NULL,

    CONSTRAINT "WorkerSession_pkey" PRIMARY KEY ("id")
);

-- CreateTable
CREATE TABLE "Penalty" (
    "id" TEXT NOT NULL,
    "blockNumber" INTEGER,
    "jobId" TEXT,
    "operator" TEXT NOT NULL,
    "workerId" TEXT,
    "kind" TEXT NOT NULL,
    "amount" DECIMAL(78,0) NOT NULL,
    "createdAt" BIGINT NOT NULL,

    CONSTRAINT "Penalty_pkey" PRIMARY KEY ("id")
);

-- CreateTable
CREATE TABLE "Payout" (
    "id" TEXT NOT NULL,
    "blockNumber" INTEGER NOT NULL,
    "recipient" TEXT NOT NULL,
    "role" TEXT NOT NULL,
    "amount" DECIMAL(78,0) NOT NULL,
    "createdAt" BIGINT NOT NULL,

    CONSTRAINT "Payout_pkey" PRIMARY KEY ("id")
);

-- CreateIndex
CREATE INDEX "Auction_status_biddingClosesAt_idx" ON "Auction"("status", "biddingClosesAt");

-- CreateIndex
CREATE INDEX "Bid_blockNumber_status_idx" ON "Bid"("blockNumber", "status");

-- CreateIndex
CREATE INDEX "Bid_prover_status_idx" ON "Bid"("prover", "status");

-- CreateIndex
CREATE INDEX "LedgerEntry_account_idx" ON "LedgerEntry"("account");

-- CreateIndex
CREATE INDEX "LedgerEntry_movementId_idx" ON "LedgerEntry"("movementId");

-- CreateIndex
CREATE INDEX "LedgerEntry_blockNumber_idx" ON "LedgerEntry"("blockNumber");

-- CreateIndex
CREATE INDEX "Block_stage_idx" ON "Block"("stage");

-- CreateIndex
CREATE INDEX "ProofJob_blockNumber_status_idx" ON "ProofJob"("blockNumber", "status");

-- CreateIndex
CREATE INDEX "ProofJob_operator_idx" ON "ProofJob"("operator");

-- CreateIndex
CREATE UNIQUE INDEX "WorkerSession_tokenHash_key" ON "WorkerSession"("tokenHash");

-- CreateIndex
CREATE INDEX "WorkerSession_operator_idx" ON "WorkerSession"("operator");

-- CreateIndex
CREATE INDEX "Penalty_operator_idx" ON "Penalty"("operator");

-- CreateIndex
CREATE INDEX "Penalty_blockNumber_idx" ON "Penalty"("blockNumber");

-- CreateIndex
CREATE INDEX "Payout_recipient_idx" ON "Payout"("recipient");

-- CreateIndex
CREATE UNIQUE INDEX "Payout_blockNumber_recipient_role_key" ON "Payout"("blockNumber", "recipient", "role");

-- AddForeignKey
ALTER TABLE "Bid" ADD CONSTRAINT "Bid_blockNumber_fkey" FOREIGN KEY ("blockNumber") REFERENCES "Auction"("blockNumber") ON DELETE RESTRICT ON UPDATE CASCADE;

-- AddForeignKey
ALTER TABLE "Block" ADD CONSTRAINT "Block_number_fkey" FOREIGN KEY ("number") REFERENCES "Auction"("blockNumber") ON DELETE RESTRICT ON UPDATE CASCADE;

-- AddForeignKey
ALTER TABLE "ProofJob" ADD CONSTRAINT "ProofJob_blockNumber_fkey" FOREIGN KEY ("blockNumber") REFERENCES "Block"("number") ON DELETE RESTRICT ON UPDATE CASCADE;

