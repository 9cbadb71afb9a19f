-- Replay-safe worker logins. Every session term is signed, the hardware tier among them, and a
-- login carries a single-use nonce:
--   WorkerSession.tier  the signed hardware tier; job types whose JOB_MIN_TIER is above it are
--                       never leased to the session
--   LoginNonce          (operator, nonce) of every login that opened a session; the primary key
--                       makes a second session from the same signed login impossible, even
--                       between relay processes. Rows are removed once their issuedAt is past the
--                       login window, when such a login is refused as stale anyway.
ALTER TABLE "WorkerSession" ADD COLUMN "tier" INTEGER NOT NULL DEFAULT 0;

CREATE TABLE "LoginNonce" (
    "operator" TEXT NOT NULL,
    "nonce" TEXT NOT NULL,
    "issuedAt" BIGINT NOT NULL,
    "usedAt" BIGINT NOT NULL,
    CONSTRAINT "LoginNonce_pkey" PRIMARY KEY ("operator", "nonce")
);

CREATE INDEX "LoginNonce_issuedAt_idx" ON "LoginNonce"("issuedAt");
