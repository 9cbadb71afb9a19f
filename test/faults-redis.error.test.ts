// Redis faults mid-tree (private redis-server): restart with data, restart empty, down 20 s,
// down 7 s, paused 10 s, connections reset.
// The same scenarios as `npm run faults` (test/faults/), each in its own world of real
// processes; every row must show zero in each loss column and recover.
import { afterAll, describe, it } from "vitest";
import { expectGoal } from "./faults/lib/assert.ts";
import { removeEverything } from "./faults/lib/registry.ts";
import { runScenario } from "./faults/lib/scenario.ts";
import { redisScenarios } from "./faults/scenarios/redis.ts";

describe("fault scenarios", () => {
  // A scenario cut short by its timeout still leaves no process or schema behind.
  afterAll(removeEverything);
  for (const s of redisScenarios) {
    it(s.name, async () => expectGoal(await runScenario(s)), s.timeoutMs);
  }
});
