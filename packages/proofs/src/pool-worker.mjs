// Entry of a pool thread. Worker threads do not inherit the parent's TypeScript loader, so the
// task module is loaded through tsx here.
import { tsImport } from "tsx/esm/api";

const { runPoolTask } = await tsImport("./pool-task.ts", import.meta.url);

export default runPoolTask;
