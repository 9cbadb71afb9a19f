-- An L1's chain id may exceed 2^31 - 1 (EIP-155 allows far more): the index's cursor keeps it as
-- BIGINT, or creating the cursor failed on every pass and chain mode never became ready.
ALTER TABLE "ChainCursor" ALTER COLUMN "chainId" TYPE BIGINT;
