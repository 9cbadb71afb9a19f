-- Recording an accepted proof: the job's proof and credit, and the block's progress (and, for a
-- root proof, the block's `proven` stage). Idempotent: a job already proven is not counted twice.
-- The block's columns are computed from the row being updated, so a concurrent stage change is
-- seen. Returns whether the proof was recorded now.
CREATE OR REPLACE FUNCTION pb_record_proof(
  p_job TEXT,
  p_block INTEGER,
  p_is_root BOOLEAN,
  p_proof TEXT,
  p_operator TEXT,
  p_worker TEXT,
  p_now BIGINT
) RETURNS BOOLEAN LANGUAGE plpgsql AS $$
BEGIN
  UPDATE "ProofJob"
    SET status = 'proven', proof = p_proof, operator = p_operator, "workerId" = p_worker,
        "provenAt" = p_now
    WHERE id = p_job AND status <> 'proven';
  IF NOT FOUND THEN RETURN FALSE; END IF;
  UPDATE "Block" SET
    "jobsProven" = "jobsProven" + 1,
    "updatedAt" = p_now,
    "rootProof" = CASE WHEN p_is_root AND stage IN ('proving', 'open_proving')
      THEN p_proof ELSE "rootProof" END,
    stages = CASE WHEN p_is_root AND stage IN ('proving', 'open_proving')
      THEN stages || jsonb_build_object('proven', p_now) ELSE stages END,
    stage = CASE WHEN p_is_root AND stage IN ('proving', 'open_proving')
      THEN 'proven' ELSE stage END
    WHERE number = p_block;
  RETURN FOUND;
END;
$$;

-- The relay's job bookkeeping in batches (group commit), applied in order:
--   ["leased", jobId, block, operator, workerId]  marks a queued or leased job leased (never
--                                                 undoes a proven one) and counts the attempt;
--   ["proven", jobId, block, isRoot, proof, operator, workerId]  records an accepted proof.
-- The blocks that get proofs are locked first, in block order: the order the aggregator locks
-- (block, then its jobs), so batches and the aggregator cannot deadlock.
CREATE OR REPLACE FUNCTION pb_job_marks(p_items JSONB, p_now BIGINT)
RETURNS TABLE (idx INTEGER, applied BOOLEAN) LANGUAGE plpgsql AS $$
DECLARE
  e JSONB;
  o BIGINT;
BEGIN
  PERFORM 1 FROM "Block" WHERE number IN (
    SELECT (x->>2)::integer FROM jsonb_array_elements(p_items) AS x WHERE x->>0 = 'proven'
  ) ORDER BY number FOR UPDATE;
  FOR e, o IN SELECT t.e, t.o FROM jsonb_array_elements(p_items) WITH ORDINALITY AS t(e, o) LOOP
    idx := o;
    IF e->>0 = 'leased' THEN
      UPDATE "ProofJob"
        SET status = 'leased', operator = e->>3, "workerId" = e->>4, attempts = attempts + 1
        WHERE id = e->>1 AND status IN ('queued', 'leased');
      applied := FOUND;
    ELSIF e->>0 = 'proven' THEN
      applied := pb_record_proof(e->>1, (e->>2)::integer, (e->>3)::boolean, e->>4, e->>5,
        e->>6, p_now);
    ELSE
      RAISE EXCEPTION 'pb_bad_job_mark:%', e->>0;
    END IF;
    RETURN NEXT;
  END LOOP;
END;
$$;
