export { Aggregator } from "./aggregator.ts";
export type { AggregatorContext } from "./context.ts";
export { type AggregatorService, createAggregator } from "./service.ts";
