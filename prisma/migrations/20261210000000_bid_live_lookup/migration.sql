-- Bid writes under a flood (an auction whose sequencer set no minimum bond, filled with zero-bond
-- bids from throwaway keys): every bid of a pb_submit_bids call looks up, by equality, the bid it
-- replays (by id) and its prover's live bid on the auction (blockNumber, prover, 'active').
--
-- 1. Only (blockNumber, status) and (prover, status) could answer the second lookup, and a plan
--    made on statistics from before the flood could take the first, reading every live bid of
--    the auction for each bid. One index on all three answers it exactly and still serves every
--    read by auction and status (the close's).
-- 2. The function's statements are planned once a session and the plan kept: planned while the
--    table was small (a new deployment, autovacuum not yet caught up with a burst), they read
--    the whole table for each bid, so each batch was slower than the last (seconds a batch at
--    40,000 live bids, past the query timeout). Every statement in the function is a lookup by
--    key, so it is planned without sequential scans.
DROP INDEX IF EXISTS "Bid_blockNumber_status_idx";
CREATE INDEX "Bid_blockNumber_status_prover_idx" ON "Bid"("blockNumber", "status", "prover");
ALTER FUNCTION pb_submit_bids(JSONB, BIGINT) SET enable_seqscan = off;
