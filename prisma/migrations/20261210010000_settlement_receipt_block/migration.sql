-- The escrow index, booking each range of L1 blocks, looks for settlements confirmed by a
-- transaction in those blocks whose event it has not booked (a reorg took the transaction's
-- block before the index got to it): by status and receipt block, not a read of every confirmed
-- settlement ever made.
CREATE INDEX "Settlement_status_receiptBlock_idx" ON "Settlement"("status", "receiptBlock");
