import { appBuild } from "../../scripts/build-config.ts";

export default appBuild({ index: "src/index.ts", cli: "src/cli.ts" }, { proofPool: true });
