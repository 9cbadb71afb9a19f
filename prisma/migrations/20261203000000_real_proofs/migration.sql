-- Real proofs. Each auction (and so its block) records the proof system its proofs are made and
-- verified with, fixed when the auction opens, so a block is always verified by its own system.
-- The sequencer uploads the block's transaction data with the auction (BlockTx: hash =
-- keccak256(data), checked by the relay). Accepted proofs are stored once (ProofArtifact): the
-- proof bytes, its public inputs (32-byte fields, concatenated) and the public output its parent
-- consumes.
ALTER TABLE "Auction" ADD COLUMN "proofSystem" TEXT NOT NULL DEFAULT 'sim';

CREATE TABLE "BlockTx" (
    "blockNumber" INTEGER NOT NULL,
    "position" INTEGER NOT NULL,
    "hash" TEXT NOT NULL,
    "data" BYTEA NOT NULL,
    CONSTRAINT "BlockTx_pkey" PRIMARY KEY ("blockNumber","position")
);
ALTER TABLE "BlockTx" ADD CONSTRAINT "BlockTx_blockNumber_fkey" FOREIGN KEY ("blockNumber")
    REFERENCES "Auction"("blockNumber") ON DELETE RESTRICT ON UPDATE CASCADE;

CREATE TABLE "ProofArtifact" (
    "jobId" TEXT NOT NULL,
    "blockNumber" INTEGER NOT NULL,
    "proofSystem" TEXT NOT NULL,
    "circuit" TEXT NOT NULL,
    "proof" BYTEA NOT NULL,
    "publicInputs" BYTEA NOT NULL,
    "output" TEXT NOT NULL,
    "createdAt" BIGINT NOT NULL,
    CONSTRAINT "ProofArtifact_pkey" PRIMARY KEY ("jobId")
);
CREATE INDEX "ProofArtifact_blockNumber_idx" ON "ProofArtifact"("blockNumber");
