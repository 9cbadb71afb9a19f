export * from "./client.ts";
export * from "./signing.ts";
export type * from "./wire.ts";
