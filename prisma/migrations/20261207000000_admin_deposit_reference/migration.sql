-- Admin deposits sent with a reference (the admin's own id for that credit): a retry of the same
-- request finds its row and credits nothing more.
CREATE TABLE "AdminDeposit" (
    "reference" TEXT NOT NULL,
    "prover" TEXT NOT NULL,
    "amount" DECIMAL(78,0) NOT NULL,
    "movementId" TEXT NOT NULL,
    "createdAt" BIGINT NOT NULL,
    CONSTRAINT "AdminDeposit_pkey" PRIMARY KEY ("reference")
);
