// Entry of a pool thread in a build: dist/pool-thread.js beside the bundle that starts the pool.
// From the sources, pool-worker.mjs plays this part through tsx.
import { runPoolTask } from "./pool-task.ts";

export default runPoolTask;
