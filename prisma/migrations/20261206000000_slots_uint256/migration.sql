-- A quote's validUntilSlot and an auction's slot are uint256s (EpochProofQuote and
-- ProvingAuction sign them as such): any value is well-formed, and a quote valid until a slot
-- beyond every slot never expires. They were BIGINTs, so a quote signed with, say, 2^64 - 1 was
-- refused although its signature was good. Both columns become NUMERIC(78, 0), like the amounts,
-- and pb_submit_bids reads the tuple's validUntilSlot (a decimal string) as NUMERIC; the function
-- is otherwise unchanged.
ALTER TABLE "Bid" ALTER COLUMN "validUntilSlot" TYPE NUMERIC(78, 0);
ALTER TABLE "Auction" ALTER COLUMN "slot" TYPE NUMERIC(78, 0);

CREATE OR REPLACE FUNCTION pb_submit_bids(
  p_bids JSONB,
  p_now BIGINT
) RETURNS TABLE (idx INTEGER, outcome TEXT, short_by NUMERIC) LANGUAGE plpgsql AS $$
DECLARE
  p_ids TEXT[];
  p_blocks INTEGER[];
  p_provers TEXT[];
  p_valid_until NUMERIC[];
  p_bonds NUMERIC[];
  p_fees INTEGER[];
  p_signatures TEXT[];
  p_available TEXT[];
  p_reserved TEXT[];
  n INTEGER;
  i INTEGER;
  a_status TEXT;
  a_closes BIGINT;
  existing TEXT;
  prev_id TEXT;
  prev_bond NUMERIC;
  bal NUMERIC;
BEGIN
  SELECT array_agg(e->>0 ORDER BY o), array_agg((e->>1)::integer ORDER BY o),
         array_agg(e->>2 ORDER BY o), array_agg((e->>3)::numeric ORDER BY o),
         array_agg((e->>4)::numeric ORDER BY o), array_agg((e->>5)::integer ORDER BY o),
         array_agg(e->>6 ORDER BY o), array_agg(e->>7 ORDER BY o), array_agg(e->>8 ORDER BY o)
    INTO p_ids, p_blocks, p_provers, p_valid_until, p_bonds, p_fees, p_signatures,
         p_available, p_reserved
    FROM jsonb_array_elements(p_bids) WITH ORDINALITY AS t(e, o);
  n := coalesce(array_length(p_ids, 1), 0);
  PERFORM 1 FROM "Auction" WHERE "blockNumber" = ANY (p_blocks)
    ORDER BY "blockNumber" FOR SHARE;
  PERFORM pb_lock_prover(p) FROM (SELECT DISTINCT p FROM unnest(p_provers) AS p ORDER BY 1) AS s;
  PERFORM 1 FROM "AccountBalance"
    WHERE account = ANY (p_available) OR account = ANY (p_reserved)
    ORDER BY account FOR UPDATE;
  FOR i IN 1 .. n LOOP
    idx := i;
    short_by := NULL;
    SELECT status, "biddingClosesAt" INTO a_status, a_closes
      FROM "Auction" WHERE "blockNumber" = p_blocks[i];
    IF NOT FOUND THEN
      outcome := 'AUCTION_NOT_FOUND'; RETURN NEXT; CONTINUE;
    END IF;
    IF a_status <> 'open' OR p_now >= a_closes THEN
      outcome := 'AUCTION_CLOSED'; RETURN NEXT; CONTINUE;
    END IF;
    SELECT status INTO existing FROM "Bid" WHERE id = p_ids[i];
    IF FOUND THEN
      outcome := CASE WHEN existing = 'active' THEN 'replay' ELSE 'BID_SUPERSEDED' END;
      RETURN NEXT; CONTINUE;
    END IF;
    SELECT id, "bondAmount" INTO prev_id, prev_bond FROM "Bid"
      WHERE "blockNumber" = p_blocks[i] AND prover = p_provers[i] AND status = 'active'
      LIMIT 1;
    IF NOT FOUND THEN prev_id := NULL; prev_bond := 0; END IF;
    SELECT balance INTO bal FROM "AccountBalance" WHERE account = p_available[i];
    bal := coalesce(bal, 0) + prev_bond;
    IF bal < p_bonds[i] THEN
      outcome := 'INSUFFICIENT_COLLATERAL'; short_by := p_bonds[i] - bal; RETURN NEXT; CONTINUE;
    END IF;
    IF prev_id IS NOT NULL THEN
      UPDATE "Bid" SET status = 'replaced' WHERE id = prev_id;
      IF prev_bond <> 0 THEN
        PERFORM pb_apply_movement(gen_random_uuid()::text, 'release',
          ARRAY[p_available[i], p_reserved[i]], ARRAY[prev_bond, -prev_bond],
          p_blocks[i], prev_id, p_now);
      END IF;
    END IF;
    IF p_bonds[i] <> 0 THEN
      PERFORM pb_apply_movement(gen_random_uuid()::text, 'reserve',
        ARRAY[p_available[i], p_reserved[i]], ARRAY[-p_bonds[i], p_bonds[i]],
        p_blocks[i], p_ids[i], p_now);
    END IF;
    INSERT INTO "Bid" (id, "blockNumber", prover, "validUntilSlot", "bondAmount",
      "basisPointFee", signature, "createdAt")
      VALUES (p_ids[i], p_blocks[i], p_provers[i], p_valid_until[i], p_bonds[i],
        p_fees[i], p_signatures[i], p_now);
    INSERT INTO "Prover" (address, "createdAt") VALUES (p_provers[i], p_now)
      ON CONFLICT (address) DO NOTHING;
    outcome := 'accepted'; RETURN NEXT;
  END LOOP;
END;
$$;
