-- The market's event log, read by the relay's live stream (GET /v1/events). Triggers on the
-- tables that carry the market's state append one row per change in the same transaction as the
-- change itself, so the log misses nothing whichever process made the change.
--
-- Order and resume: a row's position is (txid, id), txid being the writing transaction's id.
-- A reader takes only rows whose txid is below the xmin of its statement's snapshot: every such
-- transaction has ended, so no row can later appear before a position already read. Positions
-- are the same for every relay, so a client may resume on any of them.
CREATE TABLE "MarketEvent" (
    "id" BIGSERIAL NOT NULL,
    "txid" BIGINT NOT NULL DEFAULT (pg_current_xact_id()::text::bigint),
    "type" TEXT NOT NULL,
    "blockNumber" INTEGER,
    "provers" TEXT[] NOT NULL DEFAULT '{}',
    "data" JSONB NOT NULL,
    "createdAt" BIGINT NOT NULL DEFAULT ((extract(epoch FROM clock_timestamp()) * 1000)::bigint),
    CONSTRAINT "MarketEvent_pkey" PRIMARY KEY ("id")
);

CREATE INDEX "MarketEvent_txid_id_idx" ON "MarketEvent"("txid", "id");
CREATE INDEX "MarketEvent_createdAt_idx" ON "MarketEvent"("createdAt");

-- Auctions: opened, then closed with a winner (committed) or without one (unclaimed).
CREATE FUNCTION pb_auction_event() RETURNS trigger LANGUAGE plpgsql AS $$
DECLARE
  w RECORD;
BEGIN
  IF TG_OP = 'INSERT' THEN
    INSERT INTO "MarketEvent" ("type", "blockNumber", "data") VALUES ('auction', NEW."blockNumber",
      jsonb_build_object('block', NEW."blockNumber", 'kind', 'opened',
        'sequencer', NEW.sequencer, 'txCount', NEW."txCount", 'proofSystem', NEW."proofSystem",
        'blockReward', NEW."blockReward"::text, 'minBond', NEW."minBond"::text,
        'maxFeeBps', NEW."maxFeeBps", 'biddingClosesAt', NEW."biddingClosesAt",
        'proofDeadline', NEW."proofDeadline"));
  ELSIF NEW.status IS DISTINCT FROM OLD.status AND NEW.status = 'committed' THEN
    SELECT prover, "bondAmount" INTO w FROM "Bid" WHERE id = NEW."winnerBidId";
    INSERT INTO "MarketEvent" ("type", "blockNumber", "provers", "data") VALUES ('auction',
      NEW."blockNumber", ARRAY[w.prover],
      jsonb_build_object('block', NEW."blockNumber", 'kind', 'closed', 'winner', w.prover,
        'feeBps', NEW."settlementFeeBps", 'bond', w."bondAmount"::text, 'at', NEW."closedAt"));
  ELSIF NEW.status IS DISTINCT FROM OLD.status AND NEW.status = 'unclaimed' THEN
    INSERT INTO "MarketEvent" ("type", "blockNumber", "data") VALUES ('auction', NEW."blockNumber",
      jsonb_build_object('block', NEW."blockNumber", 'kind', 'unclaimed', 'winner', NULL,
        'feeBps', NULL, 'bond', NULL, 'at', NEW."closedAt"));
  END IF;
  RETURN NULL;
END $$;

CREATE TRIGGER "Auction_event" AFTER INSERT OR UPDATE ON "Auction"
  FOR EACH ROW EXECUTE FUNCTION pb_auction_event();

-- Blocks: one `stage` row per stage reached, by time and, within a millisecond, lifecycle order.
CREATE FUNCTION pb_stage_event() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
  INSERT INTO "MarketEvent" ("type", "blockNumber", "provers", "data")
  SELECT 'stage', NEW.number, CASE WHEN NEW.winner IS NULL THEN '{}' ELSE ARRAY[NEW.winner] END,
    jsonb_build_object('block', NEW.number, 'stage', s.key, 'at', (s.value #>> '{}')::bigint)
  FROM jsonb_each(NEW.stages) s
  WHERE TG_OP = 'INSERT' OR NOT (OLD.stages ? s.key)
  ORDER BY (s.value #>> '{}')::bigint, array_position(ARRAY['auction_open', 'committed',
    'proving', 'proven', 'paid', 'unclaimed', 'deadline_missed', 'open_proving'], s.key);
  RETURN NULL;
END $$;

CREATE TRIGGER "Block_event" AFTER INSERT OR UPDATE OF stages ON "Block"
  FOR EACH ROW EXECUTE FUNCTION pb_stage_event();

-- Proof jobs: one `job` row per state change (a new lease of a leased job is no change). Jobs are
-- written in bulk (a tree's fan-out, group-committed lease marks), so these triggers run once per
-- statement over its transition table rather than once per row.
CREATE FUNCTION pb_job_rows_event() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
  IF TG_OP = 'INSERT' THEN
    INSERT INTO "MarketEvent" ("type", "blockNumber", "provers", "data")
    SELECT 'job', n."blockNumber", CASE WHEN n.operator IS NULL THEN '{}' ELSE ARRAY[n.operator] END,
      jsonb_build_object('block', n."blockNumber", 'id', n.id, 'type', n.type,
        'status', n.status, 'worker', n."workerId")
    FROM new_rows n ORDER BY n."blockNumber", n.level, n.index;
  ELSE
    INSERT INTO "MarketEvent" ("type", "blockNumber", "provers", "data")
    SELECT 'job', n."blockNumber", CASE WHEN n.operator IS NULL THEN '{}' ELSE ARRAY[n.operator] END,
      jsonb_build_object('block', n."blockNumber", 'id', n.id, 'type', n.type,
        'status', n.status, 'worker', n."workerId")
    FROM new_rows n JOIN old_rows o ON o.id = n.id
    WHERE n.status IS DISTINCT FROM o.status
    ORDER BY n."blockNumber", n.level, n.index;
  END IF;
  RETURN NULL;
END $$;

CREATE TRIGGER "ProofJob_insert_event" AFTER INSERT ON "ProofJob"
  REFERENCING NEW TABLE AS new_rows
  FOR EACH STATEMENT EXECUTE FUNCTION pb_job_rows_event();

CREATE TRIGGER "ProofJob_update_event" AFTER UPDATE ON "ProofJob"
  REFERENCING OLD TABLE AS old_rows NEW TABLE AS new_rows
  FOR EACH STATEMENT EXECUTE FUNCTION pb_job_rows_event();

CREATE FUNCTION pb_payout_event() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
  INSERT INTO "MarketEvent" ("type", "blockNumber", "provers", "data") VALUES ('payout',
    NEW."blockNumber", ARRAY[NEW.recipient],
    jsonb_build_object('block', NEW."blockNumber", 'recipient', NEW.recipient,
      'role', NEW.role, 'amount', NEW.amount::text));
  RETURN NULL;
END $$;

CREATE TRIGGER "Payout_event" AFTER INSERT ON "Payout"
  FOR EACH ROW EXECUTE FUNCTION pb_payout_event();

CREATE FUNCTION pb_penalty_event() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
  INSERT INTO "MarketEvent" ("type", "blockNumber", "provers", "data") VALUES ('penalty',
    NEW."blockNumber", ARRAY[NEW.operator],
    jsonb_build_object('block', NEW."blockNumber", 'jobId', NEW."jobId",
      'operator', NEW.operator, 'worker', NEW."workerId", 'kind', NEW.kind,
      'amount', NEW.amount::text));
  RETURN NULL;
END $$;

CREATE TRIGGER "Penalty_event" AFTER INSERT ON "Penalty"
  FOR EACH ROW EXECUTE FUNCTION pb_penalty_event();
