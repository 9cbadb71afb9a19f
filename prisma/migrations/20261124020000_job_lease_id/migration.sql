-- Which lease a job's `leased` status refers to: a digest of the lease's token (never the token
-- itself). Operator and worker id do not identify a lease: a worker that signs in again under the
-- same id may re-lease its own lapsed job, and the lapse, handled a moment later, must not reset
-- that new lease. Resets are conditioned on this column instead.
ALTER TABLE "ProofJob" ADD COLUMN "leaseId" TEXT;

-- As before, with the lease's id as the sixth element of a "leased" item:
--   ["leased", jobId, block, operator, workerId, leaseId]
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
        SET status = 'leased', operator = e->>3, "workerId" = e->>4, "leaseId" = e->>5,
            attempts = attempts + 1
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
