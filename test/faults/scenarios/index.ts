// Every fault scenario, in the order the table lists them.
import type { Scenario } from "../lib/scenario.ts";
import { postgresScenarios } from "./postgres.ts";
import { processScenarios } from "./processes.ts";
import { redisScenarios } from "./redis.ts";
import { soakScenarios } from "./soak.ts";

export const scenarios: Scenario[] = [
  ...redisScenarios,
  ...postgresScenarios,
  ...processScenarios,
  ...soakScenarios,
];
