-- Redis (the proof fabric) can lose its data or become unreachable. The aggregator rebuilds a
-- lost tree from Postgres, and a winner is not slashed for time the fabric was unavailable: the
-- proof deadline is extended by every outage seen while the block was being proven.
--   fabricJobs       jobs in the block's current fabric tree (NULL: the whole tree, jobsTotal);
--                    a rebuild adds only the unproven nodes, so this is how many to expect
--   fabricDownSince  when the outage still open for this block began (NULL: none open); a
--                    block with an open outage is never slashed
--   fabricDownMs     outage time credited so far: the block's deadline is proofDeadline + this
ALTER TABLE "Block" ADD COLUMN "fabricJobs" INTEGER;
ALTER TABLE "Block" ADD COLUMN "fabricDownSince" BIGINT;
ALTER TABLE "Block" ADD COLUMN "fabricDownMs" BIGINT NOT NULL DEFAULT 0;
