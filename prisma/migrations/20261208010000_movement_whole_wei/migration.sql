-- pb_apply_movement refuses a leg that is not a whole number of wei (or is NULL) before it
-- checks the legs' sum: the columns it writes are DECIMAL(78,0), and a fraction rounded on the
-- way in could leave a movement unbalanced or let a small overdraft through.
CREATE OR REPLACE FUNCTION pb_apply_movement(
  p_movement_id TEXT,
  p_kind TEXT,
  p_accounts TEXT[],
  p_amounts NUMERIC[],
  p_block INTEGER,
  p_ref TEXT,
  p_now BIGINT
) RETURNS VOID LANGUAGE plpgsql AS $$
DECLARE
  i INTEGER;
  bal NUMERIC;
BEGIN
  IF coalesce(array_length(p_accounts, 1), 0) <> coalesce(array_length(p_amounts, 1), 0) THEN
    RAISE EXCEPTION 'pb_bad_movement:accounts and amounts differ in length';
  END IF;
  -- Whole wei only, checked before the sum: balances and the journal are DECIMAL(78,0), so a
  -- fraction would be rounded on the way in, after a sum of unrounded legs had passed.
  IF EXISTS (SELECT 1 FROM unnest(p_amounts) AS a WHERE a IS NULL OR a <> trunc(a)) THEN
    RAISE EXCEPTION 'pb_bad_movement:amounts must be whole wei';
  END IF;
  IF (SELECT coalesce(sum(a), 0) FROM unnest(p_amounts) AS a) <> 0 THEN
    RAISE EXCEPTION 'pb_bad_movement:legs do not sum to zero';
  END IF;
  FOR i IN 1 .. coalesce(array_length(p_accounts, 1), 0) LOOP
    INSERT INTO "AccountBalance" (account, balance) VALUES (p_accounts[i], p_amounts[i])
    ON CONFLICT (account) DO UPDATE SET balance = "AccountBalance".balance + EXCLUDED.balance
    RETURNING balance INTO bal;
    IF bal < 0 AND p_accounts[i] NOT LIKE 'external:%' THEN
      RAISE EXCEPTION 'pb_insufficient_balance short=% account=%', -bal, p_accounts[i];
    END IF;
  END LOOP;
  INSERT INTO "LedgerEntry" ("movementId", kind, account, amount, "blockNumber", ref, "createdAt")
  SELECT p_movement_id, p_kind, t.account, t.amount, p_block, p_ref, p_now
  FROM unnest(p_accounts, p_amounts) AS t(account, amount);
END;
$$;
