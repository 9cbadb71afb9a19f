-- The relay's job marks as a few statements a batch rather than a few a mark. Marked one by one,
-- every mark was its own UPDATE of "ProofJob" (so the market-event trigger, which is meant to run
-- once per statement over its transition table, ran once per mark), and every accepted proof its
-- own UPDATE of its "Block" row (a new row version and a run of the stage-event trigger each).
--
-- A batch whose marks are each of a different job (what the relay's group commit writes) is now
-- applied as one UPDATE of its lease marks' jobs, one of its proofs' jobs, and one of each block
-- that got proofs (its count raised by their number, closed by its root's proof as before). The
-- marks being of different rows, the order among them changes nothing. A batch naming a job more
-- than once is applied mark by mark, in order, by the function as it was (kept under the name
-- pb_job_marks_in_order): a lease and a proof of the same job depend on which came first.
-- Results are the same either way: per mark, whether it changed its job (and, for a proof, found
-- its block).
ALTER FUNCTION pb_job_marks(JSONB, BIGINT) RENAME TO pb_job_marks_in_order;

CREATE FUNCTION pb_job_marks(p_items JSONB, p_now BIGINT)
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
          attempts = j.attempts + 1
      FROM jsonb_array_elements(p_items) WITH ORDINALITY AS m(e, o)
      WHERE m.e->>0 = 'leased' AND j.id = m.e->>1 AND j.status IN ('queued', 'leased')
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
