import type { AggregatorEnv } from "@prover-boost/config";
import type { Prisma } from "@prover-boost/db";
import type { ProofFabric } from "@prover-boost/queue";

export interface AggregatorContext {
  env: AggregatorEnv;
  prisma: Prisma;
  fabric: ProofFabric;
  now: () => number;
  log: {
    info(obj: object, msg?: string): void;
    warn(obj: object, msg?: string): void;
    error(obj: object, msg?: string): void;
  };
}
