import { appBuild } from "../../scripts/build-config.ts";

export default appBuild({ index: "src/index.ts", server: "src/server.ts" }, { proofPool: true });
