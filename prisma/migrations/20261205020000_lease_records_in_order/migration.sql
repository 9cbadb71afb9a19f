-- A lease's record in its job's row may arrive after the lease has ended: the relay that grants a
-- lease writes the record after answering, and the lease may be ended meanwhile (a fail, a lapse,
-- a give-back) by any relay. Compared by lease id alone, a reset found no row naming the lease
-- and left it alone, and the record that came after it showed the job leased to a lease that had
-- ended; a record late enough could even overwrite a newer lease's.
--
-- Leases of a job follow one another on Redis's clock, which stamps each when it is granted. The
-- row now keeps the stamp of the latest lease it has heard of, whether it heard of its start (the
-- record) or its end (a reset), and a lease's record is written only over an older stamp. A reset
-- takes the ended lease's stamp (apps/relay/src/services/gateway.ts), so the record that follows
-- it is refused, while a newer lease's record, stamped later, is not.
ALTER TABLE "ProofJob" ADD COLUMN "leaseAt" BIGINT;

-- A "leased" item gains the lease's stamp as its seventh element (Redis time, unix ms):
--   ["leased", jobId, block, operator, workerId, leaseId, leaseAt]
-- An item without one (a relay from before this change) is written as before.
CREATE OR REPLACE FUNCTION pb_job_marks_in_order(p_items JSONB, p_now BIGINT)
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
            attempts = attempts + 1, "leaseAt" = greatest("leaseAt", (e->>6)::bigint)
        WHERE id = e->>1 AND status IN ('queued', 'leased')
          AND NOT coalesce("leaseAt" >= (e->>6)::bigint, false);
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

-- As in the job-marks-in-sets migration, with the same condition on a lease's record (its stamp
-- read under a CASE: the order in which Postgres checks a WHERE's conditions is its own, and a
-- proof's seventh element is a worker id).
CREATE OR REPLACE FUNCTION pb_job_marks(p_items JSONB, p_now BIGINT)
RETURNS TABLE (idx INTEGER, applied BOOLEAN) LANGUAGE plpgsql AS $$
DECLARE
  bad TEXT;
  v_leased BIGINT[];
  v_proven BIGINT[];
BEGIN
  SELECT coalesce(x->>0, 'null') INTO bad FROM jsonb_array_elements(p_items) AS x
    WHERE x->>0 IS NULL OR x->>0 NOT IN ('leased', 'proven') LIMIT 1;
  IF bad IS NOT NULL THEN
    RAISE EXCEPTION 'pb_bad_job_mark:%', bad;
  END IF;
  PERFORM 1 FROM "Block" WHERE number IN (
    SELECT (x->>2)::integer FROM jsonb_array_elements(p_items) AS x WHERE x->>0 = 'proven'
  ) ORDER BY number FOR UPDATE;
  IF (SELECT count(DISTINCT x->>1) < count(*) FROM jsonb_array_elements(p_items) AS x) THEN
    RETURN QUERY SELECT * FROM pb_job_marks_in_order(p_items, p_now);
    RETURN;
  END IF;

  WITH marked AS (
    UPDATE "ProofJob" j
      SET status = 'leased', operator = m.e->>3, "workerId" = m.e->>4, "leaseId" = m.e->>5,
          attempts = j.attempts + 1,
          "leaseAt" = greatest(j."leaseAt", CASE WHEN m.e->>0 = 'leased' THEN (m.e->>6)::bigint END)
      FROM jsonb_array_elements(p_items) WITH ORDINALITY AS m(e, o)
      WHERE m.e->>0 = 'leased' AND j.id = m.e->>1 AND j.status IN ('queued', 'leased')
        AND NOT coalesce(j."leaseAt" >= CASE WHEN m.e->>0 = 'leased' THEN (m.e->>6)::bigint END, false)
      RETURNING m.o
  )
  SELECT array_agg(marked.o) INTO v_leased FROM marked;

  WITH proofs AS (
    UPDATE "ProofJob" j
      SET status = 'proven', proof = m.e->>4, operator = m.e->>5, "workerId" = m.e->>6,
          "provenAt" = p_now
      FROM jsonb_array_elements(p_items) WITH ORDINALITY AS m(e, o)
      WHERE m.e->>0 = 'proven' AND j.id = m.e->>1 AND j.status <> 'proven'
      RETURNING m.o, (m.e->>2)::integer AS block, (m.e->>3)::boolean AS is_root, m.e->>4 AS proof
  ), counted AS (
    UPDATE "Block" b SET
      "jobsProven" = b."jobsProven" + c.n,
      "updatedAt" = p_now,
      "rootProof" = CASE WHEN c.root_proof IS NOT NULL AND b.stage IN ('proving', 'open_proving')
        THEN c.root_proof ELSE b."rootProof" END,
      stages = CASE WHEN c.root_proof IS NOT NULL AND b.stage IN ('proving', 'open_proving')
        THEN b.stages || jsonb_build_object('proven', p_now) ELSE b.stages END,
      stage = CASE WHEN c.root_proof IS NOT NULL AND b.stage IN ('proving', 'open_proving')
        THEN 'proven' ELSE b.stage END
      FROM (
        SELECT proofs.block, count(*) AS n,
          (array_agg(proofs.proof ORDER BY proofs.o) FILTER (WHERE proofs.is_root))[1]
            AS root_proof
        FROM proofs GROUP BY proofs.block
      ) c
      WHERE b.number = c.block
      RETURNING b.number
  )
  SELECT array_agg(proofs.o) INTO v_proven FROM proofs
    WHERE proofs.block IN (SELECT counted.number FROM counted);

  RETURN QUERY
    SELECT t.o::integer,
      coalesce(t.o = ANY(v_leased), false) OR coalesce(t.o = ANY(v_proven), false)
    FROM jsonb_array_elements(p_items) WITH ORDINALITY AS t(e, o)
    ORDER BY t.o;
END;
$$;
