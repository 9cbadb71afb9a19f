-- The end of the latest fabric outage credited to a block's deadline: a gap with no relay that an
-- aggregator stopped at the time never saw (the relay that ended it logs it in Redis) is credited
-- once it is back, only after this, so time the keeper already credited is never counted twice.
ALTER TABLE "Block" ADD COLUMN "fabricCreditedTo" BIGINT;
