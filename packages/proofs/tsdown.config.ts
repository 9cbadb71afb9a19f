import { packageBuild } from "../../scripts/build-config.ts";

// pool-thread: the entry of the proof pool's threads, beside the chunk that starts them.
export default packageBuild({ index: "src/index.ts", "pool-thread": "src/pool-thread.ts" });
