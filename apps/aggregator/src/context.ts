// What the aggregator's duties share, built once in service.ts: the mapped config, never the env.
import type { Prisma } from "@prover-boost/db";
import type { ProofFabric } from "@prover-boost/queue";
import type { AggregatorConfig } from "./config.ts";
import type { AggregatorMetrics } from "./metrics.ts";

export interface AggregatorContext {
  config: AggregatorConfig;
  prisma: Prisma;
  fabric: ProofFabric;
  now: () => number;
  /** What the duties count (metrics.ts), served on METRICS_PORT. */
  metrics: AggregatorMetrics;
  log: {
    info(obj: object, msg?: string): void;
    warn(obj: object, msg?: string): void;
    error(obj: object, msg?: string): void;
  };
}
