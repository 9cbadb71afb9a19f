export type { Job } from "bullmq";
export * from "./catalog.ts";
export * from "./fabric.ts";
export * from "./leases.ts";
export * from "./redis.ts";
