export { Aggregator } from "./aggregator.ts";
export { type AggregatorConfig, aggregatorConfigOf, type RewardModel } from "./config.ts";
export type { AggregatorContext } from "./context.ts";
export { type AggregatorService, createAggregator } from "./service.ts";
export { AggregatorMetrics } from "./metrics.ts";
