// The signing domain every test stack runs on: the four-field EIP-712 domain (chain id and
// verifying contract), as a deployment must (the relay and the aggregator refuse to start on the
// two-field domain unless EIP712_LEGACY_DOMAIN=true). Tests of the legacy domain set it themselves.
import type { DomainConfig } from "@prover-boost/core";

export const TEST_CHAIN_ID = 31337;
export const TEST_VERIFYING_CONTRACT = "0x00000000000000000000000000000000000000B0" as const;

/** What clients sign under against a test stack. */
export const testDomain = {
  name: "Aztec Rollup",
  version: "1",
  chainId: TEST_CHAIN_ID,
  verifyingContract: TEST_VERIFYING_CONTRACT,
} as const satisfies DomainConfig;

/** The environment that binds a relay or aggregator to testDomain. */
export const testDomainEnv = {
  CHAIN_ID: String(TEST_CHAIN_ID),
  VERIFYING_CONTRACT: TEST_VERIFYING_CONTRACT,
} as const;
