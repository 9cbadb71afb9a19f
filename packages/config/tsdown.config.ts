import { packageBuild } from "../../scripts/build-config.ts";

export default packageBuild({ index: "src/index.ts" });
