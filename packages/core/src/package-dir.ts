// Where a workspace package's files are on disk. Files shipped beside the sources (circuits,
// setup points, migrations, contracts) are found from the package's root, resolved through
// node_modules, so the same code finds them from its sources and from a bundle in another
// package's dist/.
import { createRequire } from "node:module";
import { pathToFileURL } from "node:url";

/** The root directory of installed package `name` (a file URL ending in /), seen from `from`. */
export function packageDir(name: string, from: string | URL): URL {
  const manifest = createRequire(from).resolve(`${name}/package.json`);
  return new URL("./", pathToFileURL(manifest));
}
