export type { Job } from "bullmq";
export {
  type AffinityNote,
  HOLD_DEMOTION,
  type Lessee,
  type TakeOutcome,
} from "./affinity.ts";
export * from "./attempts.ts";
export * from "./broker/broker.ts";
export * from "./broker/presence.ts";
export * from "./broker/records.ts";
export * from "./broker/types.ts";
export * from "./catalog.ts";
export * from "./fabric.ts";
export type { PopCount } from "./picking.ts";
export * from "./provenance.ts";
export * from "./redis.ts";
export { retryUntilDone } from "./retry.ts";
export * from "./wakeups.ts";
