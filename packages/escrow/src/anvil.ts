// A private local L1: the `anvil` binary from the @foundry-rs/anvil platform package for this
// machine, on a free loopback port, answered before it is handed out and killed on stop.
// npm installs the one platform package that matches (optional dependencies) and runs no
// install scripts, so the binary path is resolved here rather than through the package's shim.
import { type ChildProcess, spawn } from "node:child_process";
import { existsSync } from "node:fs";
import { createRequire } from "node:module";
import { createServer } from "node:net";
import { dirname, join } from "node:path";
import { ProverBoostError } from "@prover-boost/core";
import { mnemonicToAccount } from "viem/accounts";
import { killWithThisProcess } from "./child-guard.ts";

/** The chain id every anvil started here uses (anvil's own default). */
export const ANVIL_CHAIN_ID = 31337;

/** The mnemonic anvil derives its ten pre-funded development accounts from. Never for real money. */
export const ANVIL_MNEMONIC = "test test test test test test test test test test test junk";

/** Wei each anvil development account starts with (10,000 ETH). */
export const ANVIL_ACCOUNT_BALANCE = 10_000n * 10n ** 18n;

/** The pre-funded anvil development account at `index` (0..9). */
export function anvilAccount(index: number) {
  return mnemonicToAccount(ANVIL_MNEMONIC, { addressIndex: index });
}

export class AnvilUnavailableError extends ProverBoostError {
  override readonly name = "AnvilUnavailableError";
  constructor(message: string, options?: { cause?: unknown }) {
    super("ANVIL_UNAVAILABLE", message, options);
  }
}

const platformPackages: Record<string, string> = {
  "darwin-x64": "@foundry-rs/anvil-darwin-amd64",
  "darwin-arm64": "@foundry-rs/anvil-darwin-arm64",
  "linux-x64": "@foundry-rs/anvil-linux-amd64",
  "linux-arm64": "@foundry-rs/anvil-linux-arm64",
  "win32-x64": "@foundry-rs/anvil-win32-amd64",
};

/** The path of the anvil binary installed for this platform; throws AnvilUnavailableError. */
export function anvilBinaryPath(): string {
  const pkg = platformPackages[`${process.platform}-${process.arch}`];
  if (!pkg) {
    throw new AnvilUnavailableError(
      `@foundry-rs/anvil ships no binary for ${process.platform}-${process.arch}`,
    );
  }
  const require = createRequire(import.meta.url);
  let dir: string;
  try {
    dir = dirname(require.resolve(`${pkg}/package.json`));
  } catch (cause) {
    throw new AnvilUnavailableError(
      `${pkg} is not installed: run \`npm ci\` (it is an optional dependency of @foundry-rs/anvil)`,
      { cause },
    );
  }
  const bin = join(dir, "bin", process.platform === "win32" ? "anvil.exe" : "anvil");
  if (!existsSync(bin)) throw new AnvilUnavailableError(`${bin} is missing from ${pkg}`);
  return bin;
}

export async function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const srv = createServer();
    srv.once("error", reject);
    srv.listen(0, "127.0.0.1", () => {
      const addr = srv.address();
      const port = typeof addr === "object" && addr ? addr.port : 0;
      srv.close(() => resolve(port));
    });
  });
}

/** Asks `url` for its chain id over JSON-RPC; undefined when nothing answers. */
export async function rpcChainId(url: string): Promise<number | undefined> {
  try {
    const res = await fetch(url, {
      method: "POST",
      headers: { "content-type": "application/json" },
      body: JSON.stringify({ jsonrpc: "2.0", id: 1, method: "eth_chainId", params: [] }),
      signal: AbortSignal.timeout(1000),
    });
    if (!res.ok) return undefined;
    const body = (await res.json()) as { result?: string };
    return body.result === undefined ? undefined : Number(body.result);
  } catch {
    return undefined;
  }
}

export interface AnvilOptions {
  /** Loopback port; a free one when omitted. */
  port?: number;
  /** Seconds between mined blocks; when omitted anvil mines one block per transaction. */
  blockTime?: number;
  /** How long to wait for the node to answer (default 15 s). */
  startTimeoutMs?: number;
  /** More anvil flags, e.g. ["--state", file] to keep the chain across restarts. */
  extraArgs?: readonly string[];
  /**
   * A process group of its own: a Ctrl-C in the terminal (which signals the caller's group) does
   * not reach it, so the caller can stop it after whatever still needs it.
   */
  ownGroup?: boolean;
}

export interface AnvilHandle {
  url: string;
  port: number;
  chainId: number;
  /** The process id of the node (to kill it from a fault test). */
  pid: number;
  /** Kills the node and waits for it to exit. Safe to call twice. */
  stop(): Promise<void>;
}

export async function startAnvil(options: AnvilOptions = {}): Promise<AnvilHandle> {
  const bin = anvilBinaryPath();
  const port = options.port ?? (await freePort());
  const args = [
    "--host",
    "127.0.0.1",
    "--port",
    String(port),
    "--chain-id",
    String(ANVIL_CHAIN_ID),
    "--silent",
  ];
  if (options.blockTime !== undefined) args.push("--block-time", String(options.blockTime));
  args.push(...(options.extraArgs ?? []));
  let child: ChildProcess;
  try {
    child = await new Promise<ChildProcess>((resolve, reject) => {
      const c = spawn(bin, args, {
        stdio: ["ignore", "ignore", "pipe"],
        detached: options.ownGroup === true,
      });
      c.once("error", reject);
      c.once("spawn", () => resolve(c));
    });
  } catch (cause) {
    throw new AnvilUnavailableError(`could not start ${bin}`, { cause });
  }
  let stderr = "";
  child.stderr?.on("data", (chunk: Buffer) => {
    stderr = (stderr + chunk.toString()).slice(-4000);
  });
  const exited = new Promise<void>((resolve) => {
    if (child.exitCode !== null || child.signalCode !== null) resolve();
    else child.once("exit", () => resolve());
  });
  // The node never outlives this process, even when it exits without calling stop, or is killed
  // with SIGKILL (child-guard.ts).
  killWithThisProcess(child);
  const killOnExit = () => {
    if (child.exitCode === null && child.signalCode === null) child.kill("SIGKILL");
  };
  process.once("exit", killOnExit);
  const stop = async () => {
    process.removeListener("exit", killOnExit);
    killOnExit();
    await exited;
  };
  const url = `http://127.0.0.1:${port}`;
  const until = Date.now() + (options.startTimeoutMs ?? 15_000);
  for (;;) {
    if (child.exitCode !== null || child.signalCode !== null) {
      throw new AnvilUnavailableError(`anvil exited before answering on ${url}: ${stderr.trim()}`);
    }
    const chainId = await rpcChainId(url);
    if (chainId === ANVIL_CHAIN_ID) break;
    if (chainId !== undefined) {
      await stop();
      throw new AnvilUnavailableError(`another node (chain ${chainId}) answers on ${url}`);
    }
    if (Date.now() > until) {
      await stop();
      throw new AnvilUnavailableError(`anvil did not answer on ${url}: ${stderr.trim()}`);
    }
    await new Promise((r) => setTimeout(r, 50));
  }
  return { url, port, chainId: ANVIL_CHAIN_ID, pid: child.pid ?? -1, stop };
}
