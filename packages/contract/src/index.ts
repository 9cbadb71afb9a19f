export * from "./errors.ts";
export * from "./messages.ts";
export * from "./operations.ts";
export * from "./primitives.ts";
export * from "./schemas.ts";
