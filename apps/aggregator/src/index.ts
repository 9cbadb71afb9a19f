export { Aggregator } from "./aggregator.ts";
export type { AggregatorContext } from "./context.ts";
export { createAggregator, type AggregatorService } from "./service.ts";
