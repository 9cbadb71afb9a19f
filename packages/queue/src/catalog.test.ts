import { planTree } from "@prover-boost/core";
import { describe, expect, it } from "vitest";
import { queueFor, treeQueueKinds } from "./catalog.ts";

describe("treeQueueKinds", () => {
  it("names exactly the queues of the planned tree", () => {
    for (const txCount of [0, 1, 2, 3, 4, 5, 7, 8, 9, 31, 64, 100, 1024]) {
      const planned = new Set(planTree(txCount).nodes.map((n) => queueFor(n.type)));
      expect(new Set(treeQueueKinds(txCount))).toEqual(planned);
    }
  });
});
