export { Aggregator } from "./aggregator.ts";
export { type AggregatorConfig, aggregatorConfigOf, type RewardModel } from "./config.ts";
export type { AggregatorContext } from "./context.ts";
export { AggregatorMetrics } from "./metrics.ts";
export { type AggregatorService, createAggregator } from "./service.ts";
