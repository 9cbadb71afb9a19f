-- The escrow indexes of several relays share one cursor. Each booking or undoing of a reorg
-- checks, under the row's lock, that the cursor has not moved since its pass read it: by a
-- version every move adds one to, since a block and hash can come back (a reorg undone moves the
-- cursor back to a block it held before).
ALTER TABLE "ChainCursor" ADD COLUMN "version" BIGINT NOT NULL DEFAULT 0;
