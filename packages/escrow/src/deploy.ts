// Deploys ProverBoostEscrow with viem and waits for its receipt.
import { ProverBoostError } from "@prover-boost/core";
import type { Account, Address, Chain, Hash, PublicClient, Transport, WalletClient } from "viem";
import { escrowAbi, escrowBytecode } from "./generated/artifact.ts";

export interface EscrowDeployArgs {
  /** The address allowed to lock, release and slash bonds and to settle or refund blocks. */
  settler: Address;
  /** Seconds between a withdrawal request and the moment it can be completed. */
  withdrawalDelay: bigint;
  /** Basis points (0..10000) of a slashed bond credited to the block's sequencer; the rest burns. */
  slashToSequencerBps: bigint;
  /** Addresses allowed to fund block rewards, registered by the deployer (the owner) right after
   * deployment; more can be added later with `setSequencer`. */
  sequencers?: readonly Address[];
}

export interface EscrowDeployment {
  address: Address;
  txHash: Hash;
  blockNumber: bigint;
}

export class EscrowDeployError extends ProverBoostError {
  override readonly name = "EscrowDeployError";
  constructor(message: string, options?: { cause?: unknown }) {
    super("ESCROW_DEPLOY_FAILED", message, options);
  }
}

export async function deployEscrow(
  walletClient: WalletClient<Transport, Chain | undefined, Account>,
  publicClient: PublicClient,
  args: EscrowDeployArgs,
): Promise<EscrowDeployment> {
  if (args.slashToSequencerBps < 0n || args.slashToSequencerBps > 10_000n) {
    throw new EscrowDeployError(
      `slashToSequencerBps must be 0..10000, got ${args.slashToSequencerBps}`,
    );
  }
  if (args.withdrawalDelay < 0n) throw new EscrowDeployError("withdrawalDelay must be >= 0");
  const txHash = await walletClient.deployContract({
    abi: escrowAbi,
    bytecode: escrowBytecode,
    args: [args.settler, args.withdrawalDelay, args.slashToSequencerBps],
    account: walletClient.account,
    chain: walletClient.chain ?? null,
  });
  const receipt = await publicClient.waitForTransactionReceipt({ hash: txHash });
  if (receipt.status !== "success" || !receipt.contractAddress) {
    throw new EscrowDeployError(`escrow deployment ${txHash} reverted`);
  }
  const address = receipt.contractAddress;
  for (const sequencer of args.sequencers ?? []) {
    const hash = await walletClient.writeContract({
      address,
      abi: escrowAbi,
      functionName: "setSequencer",
      args: [sequencer, true],
      account: walletClient.account,
      chain: walletClient.chain ?? null,
    });
    const r = await publicClient.waitForTransactionReceipt({ hash });
    if (r.status !== "success") throw new EscrowDeployError(`setSequencer(${sequencer}) reverted`);
  }
  return { address, txHash, blockNumber: receipt.blockNumber };
}
