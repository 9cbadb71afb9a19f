import { appBuild } from "../../scripts/build-config.ts";

// cli: the worker agent alone; prover-boost: the operator CLI (bin/prover-boost.mjs runs it).
export default appBuild(
  { index: "src/index.ts", cli: "src/cli.ts", "prover-boost": "src/operator/main.ts" },
  { proofPool: true },
);
