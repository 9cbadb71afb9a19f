// `npm run escrow:compile`: rebuilds src/generated/artifact.ts from contracts/ProverBoostEscrow.sol.
import { writeFileSync } from "node:fs";
import { dirname, join } from "node:path";
import { fileURLToPath } from "node:url";
import { compileEscrow, renderArtifact } from "./compile.ts";

const out = join(dirname(fileURLToPath(import.meta.url)), "generated/artifact.ts");
const compiled = compileEscrow();
writeFileSync(out, renderArtifact(compiled));
console.log(
  `ProverBoostEscrow: ${compiled.abi.length} ABI entries, ${(compiled.bytecode.length - 2) / 2} bytes (solc ${compiled.solcVersion})`,
);
