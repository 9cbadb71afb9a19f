-- CreateTable
CREATE TABLE "ProverActivity" (
    "prover" TEXT NOT NULL,
    "value" DECIMAL(78,0) NOT NULL,
    "epoch" BIGINT NOT NULL,

    CONSTRAINT "ProverActivity_pkey" PRIMARY KEY ("prover")
);
