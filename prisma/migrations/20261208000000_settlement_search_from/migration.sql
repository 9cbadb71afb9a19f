-- The first L1 block a settlement's transaction can be in, so the settler looks for it on the
-- chain from there (in ranges of L1_LOG_RANGE blocks) instead of from the chain's first block.
ALTER TABLE "Settlement" ADD COLUMN "searchFrom" BIGINT;
