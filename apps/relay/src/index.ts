export { buildApp } from "./app.ts";
export type { RelayContext } from "./context.ts";
export { RelayMetrics } from "./domain-metrics.ts";
export { registerMetrics } from "./metrics.ts";
export { createRelay, type Relay, type RelayDeps } from "./relay.ts";
export { GATE_WAIT_MIN_MS } from "./services/gateway.ts";
