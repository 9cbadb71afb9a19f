// `npm run escrow:deploy -- --rpc URL --key-file F` deploys to the node at URL and prints only
// the address on stdout; bad input exits non-zero without deploying.
import { execFile } from "node:child_process";
import { mkdtemp, rm, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { promisify } from "node:util";
import { createPublicClient, getAddress, http } from "viem";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { type AnvilHandle, anvilAccount, startAnvil } from "./anvil.ts";
import { escrowAbi } from "./generated/artifact.ts";

const run = promisify(execFile);
const cli = join(import.meta.dirname, "deploy-cli.ts");
// anvil's first development key (public knowledge; never for real money).
const devKey = "ac0974bec39a17e36ba4a6b4d238ff944bacb478cbed5efcae784d7bf4f2ff80";

let anvil: AnvilHandle;
let dir: string;
beforeAll(async () => {
  anvil = await startAnvil();
  dir = await mkdtemp(join(tmpdir(), "escrow-deploy-"));
});
afterAll(async () => {
  await anvil?.stop();
  if (dir) await rm(dir, { recursive: true, force: true });
});

function deploy(args: string[]) {
  return run(process.execPath, ["--import", "tsx", cli, ...args], { timeout: 60_000 });
}

describe("escrow:deploy", () => {
  it("deploys with the given settler and parameters and prints the address", async () => {
    const keyFile = join(dir, "key");
    await writeFile(keyFile, `${devKey}\n`);
    const settler = anvilAccount(1).address;
    const { stdout } = await deploy([
      "--rpc",
      anvil.url,
      "--key-file",
      keyFile,
      "--settler",
      settler,
      "--withdrawal-delay",
      "120",
      "--slash-to-sequencer-bps",
      "4000",
      "--sequencer",
      anvilAccount(2).address,
      anvilAccount(3).address,
    ]);
    const address = getAddress(stdout.trim());
    const client = createPublicClient({ transport: http(anvil.url) });
    const read = (
      functionName: "owner" | "settler" | "WITHDRAWAL_DELAY" | "SLASH_TO_SEQUENCER_BPS",
    ) => client.readContract({ address, abi: escrowAbi, functionName });
    expect(await read("owner")).toBe(anvilAccount(0).address);
    expect(await read("settler")).toBe(settler);
    expect(await read("WITHDRAWAL_DELAY")).toBe(120n);
    expect(await read("SLASH_TO_SEQUENCER_BPS")).toBe(4000n);
    for (const [i, allowed] of [
      [2, true],
      [3, true],
      [4, false],
    ] as const) {
      expect(
        await client.readContract({
          address,
          abi: escrowAbi,
          functionName: "isSequencer",
          args: [anvilAccount(i).address],
        }),
      ).toBe(allowed);
    }
  });

  it("refuses a key file without a key and a slash share above 100%", async () => {
    const client = createPublicClient({ transport: http(anvil.url) });
    const deployer = anvilAccount(0).address;
    const nonce = await client.getTransactionCount({ address: deployer });
    const bad = join(dir, "bad");
    await writeFile(bad, "not a key");
    await expect(deploy(["--rpc", anvil.url, "--key-file", bad])).rejects.toMatchObject({
      code: 1,
      stdout: "",
    });
    const keyFile = join(dir, "key2");
    await writeFile(keyFile, `0x${devKey}`);
    await expect(
      deploy(["--rpc", anvil.url, "--key-file", keyFile, "--slash-to-sequencer-bps", "10001"]),
    ).rejects.toMatchObject({ stdout: "" });
    expect(await client.getTransactionCount({ address: deployer })).toBe(nonce);
  });
});
