// `npm run escrow:deploy -- --rpc URL --key-file F`: deploys ProverBoostEscrow and prints its
// address on stdout (details on stderr).
import { readFileSync } from "node:fs";
import { Command, InvalidArgumentError } from "commander";
import { createPublicClient, createWalletClient, http, isAddress } from "viem";
import { privateKeyToAccount } from "viem/accounts";
import { l1Chain } from "./chain.ts";
import { deployEscrow } from "./deploy.ts";

function bigintArg(name: string, min: bigint, max?: bigint) {
  return (value: string): bigint => {
    if (!/^\d+$/.test(value)) throw new InvalidArgumentError(`${name} must be a whole number`);
    const n = BigInt(value);
    if (n < min || (max !== undefined && n > max)) {
      throw new InvalidArgumentError(`${name} must be in ${min}..${max ?? "∞"}`);
    }
    return n;
  };
}

function readKey(file: string): `0x${string}` {
  const raw = readFileSync(file, "utf8").trim();
  const key = raw.startsWith("0x") ? raw : `0x${raw}`;
  if (!/^0x[0-9a-fA-F]{64}$/.test(key)) {
    throw new InvalidArgumentError(`${file} does not hold a 32-byte hex private key`);
  }
  return key as `0x${string}`;
}

const program = new Command()
  .name("escrow:deploy")
  .description("Deploy the ProverBoostEscrow contract and print its address")
  .requiredOption("--rpc <url>", "JSON-RPC URL of the L1 node")
  .requiredOption(
    "--key-file <file>",
    "file holding the deployer's hex private key (becomes owner)",
  )
  .option("--settler <address>", "settler address (default: the deployer)")
  .option(
    "--sequencer <address...>",
    "addresses allowed to fund block rewards (repeatable; more later with setSequencer)",
  )
  .option(
    "--withdrawal-delay <seconds>",
    "seconds between a withdrawal request and its completion",
    bigintArg("withdrawal delay", 0n),
    86_400n,
  )
  .option(
    "--slash-to-sequencer-bps <bps>",
    "share of a slashed bond paid to the sequencer, in basis points (rest burned)",
    bigintArg("slash share", 0n, 10_000n),
    5_000n,
  )
  .action(async (opts) => {
    const account = privateKeyToAccount(readKey(opts.keyFile));
    const settler = opts.settler ?? account.address;
    if (!isAddress(settler))
      throw new InvalidArgumentError(`--settler ${settler} is not an address`);
    const sequencers: string[] = opts.sequencer ?? [];
    for (const s of sequencers) {
      if (!isAddress(s)) throw new InvalidArgumentError(`--sequencer ${s} is not an address`);
    }
    const transport = http(opts.rpc);
    const publicClient = createPublicClient({ transport });
    const chainId = await publicClient.getChainId();
    const chain = l1Chain(chainId, opts.rpc);
    const walletClient = createWalletClient({ account, chain, transport });
    const deployment = await deployEscrow(walletClient, publicClient, {
      settler,
      withdrawalDelay: opts.withdrawalDelay,
      slashToSequencerBps: opts.slashToSequencerBps,
      sequencers: sequencers as `0x${string}`[],
    });
    console.error(
      `deployed ProverBoostEscrow on chain ${chainId} in tx ${deployment.txHash} ` +
        `(block ${deployment.blockNumber}); owner ${account.address}, settler ${settler}, ` +
        `sequencers [${sequencers.join(", ")}]`,
    );
    console.log(deployment.address);
  });

program.parseAsync().catch((err: unknown) => {
  console.error(err instanceof Error ? err.message : String(err));
  process.exitCode = 1;
});
