export { buildApp } from "./app.ts";
export type { RelayContext } from "./context.ts";
export { createRelay, type Relay, type RelayDeps } from "./relay.ts";
