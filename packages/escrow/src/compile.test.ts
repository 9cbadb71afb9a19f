// The committed ABI and bytecode are what the committed source compiles to, with the pinned
// compiler; and the lockfile records the anvil binary for every platform.
import { readFileSync } from "node:fs";
import { join } from "node:path";
import { describe, expect, it } from "vitest";
import { compileEscrow, compileSolidity, contractsDir, renderArtifact } from "./compile.ts";
import { escrowAbi, escrowBytecode, escrowSolcVersion } from "./generated/artifact.ts";

const root = join(contractsDir, "..");

describe("escrow artifact", () => {
  const compiled = compileEscrow();

  it("matches a fresh compilation of contracts/ProverBoostEscrow.sol", () => {
    expect(compiled.solcVersion).toBe(escrowSolcVersion);
    expect(compiled.abi).toEqual(escrowAbi);
    expect(compiled.bytecode).toBe(escrowBytecode);
    const committed = readFileSync(join(import.meta.dirname, "generated/artifact.ts"), "utf8");
    expect(renderArtifact(compiled)).toBe(committed);
  });

  it("is built by solc 0.8.37, pinned exactly", () => {
    expect(escrowSolcVersion).toMatch(/^0\.8\.37\+/);
    const pkg = JSON.parse(readFileSync(join(import.meta.dirname, "../package.json"), "utf8"));
    // Development tools of the package (the services only read the committed artifact).
    expect(pkg.devDependencies.solc).toBe("0.8.37");
    expect(pkg.devDependencies["@foundry-rs/anvil"]).toBe("1.7.1");
  });

  it("reports solc's errors instead of producing an artifact", () => {
    expect(() =>
      compileSolidity({ "Bad.sol": "pragma solidity ^0.8.0; contract Bad { x }" }),
    ).toThrow(/ParserError/);
  });

  it("exposes the events the ledger indexes and the custom errors the tests expect", () => {
    const names = (type: string) =>
      escrowAbi.filter((e) => e.type === type).map((e) => ("name" in e ? e.name : ""));
    expect(names("event").sort()).toEqual(
      [
        "BlockSettled",
        "BondLocked",
        "BondReleased",
        "BondSlashed",
        "Deposited",
        "OwnershipTransferred",
        "Penalized",
        "RewardFunded",
        "RewardPaid",
        "RewardRefunded",
        "SequencerSet",
        "SettlerChanged",
        "WithdrawalCancelled",
        "WithdrawalRequested",
        "Withdrawn",
      ].sort(),
    );
    expect(names("error")).toContain("Reentrancy");
    expect(names("error")).toContain("Unauthorized");
    expect(names("error")).toContain("PenaltyAlreadyApplied");
  });
});

describe("lockfile", () => {
  it("records every platform's anvil binary, so npm ci works on each", () => {
    const lock = JSON.parse(readFileSync(join(root, "package-lock.json"), "utf8"));
    const packages = lock.packages as Record<string, { version?: string; integrity?: string }>;
    for (const platform of [
      "darwin-amd64",
      "darwin-arm64",
      "linux-amd64",
      "linux-arm64",
      "win32-amd64",
    ]) {
      const entry = packages[`node_modules/@foundry-rs/anvil-${platform}`];
      expect(entry?.version, platform).toBe("1.7.1");
      expect(entry?.integrity, platform).toMatch(/^sha512-/);
    }
  });
});
