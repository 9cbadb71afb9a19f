export * from "./anvil.ts";
export * from "./chain.ts";
export { killWithThisProcess } from "./child-guard.ts";
export * from "./deploy.ts";
export { escrowAbi, escrowBytecode, escrowSolcVersion } from "./generated/artifact.ts";

/** Block states as the contract's `blockInfo` returns them. */
export const EscrowBlockState = { None: 0, Funded: 1, Settled: 2, Refunded: 3 } as const;
