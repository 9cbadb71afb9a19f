// startAnvil runs the registry's anvil binary on a free port, answers before returning, and
// leaves nothing listening after stop.
import { execFile } from "node:child_process";
import { createServer } from "node:net";
import { join } from "node:path";
import { promisify } from "node:util";
import { createPublicClient, http } from "viem";
import { describe, expect, it } from "vitest";
import {
  ANVIL_ACCOUNT_BALANCE,
  ANVIL_CHAIN_ID,
  AnvilUnavailableError,
  anvilAccount,
  anvilBinaryPath,
  startAnvil,
} from "./anvil.ts";

async function answers(url: string): Promise<boolean> {
  try {
    const res = await fetch(url, {
      method: "POST",
      headers: { "content-type": "application/json" },
      body: JSON.stringify({ jsonrpc: "2.0", id: 1, method: "eth_blockNumber", params: [] }),
    });
    return res.ok;
  } catch {
    return false;
  }
}

describe("startAnvil", () => {
  it("resolves the platform binary from its package", () => {
    expect(anvilBinaryPath()).toMatch(
      /@foundry-rs[\\/]anvil-[a-z0-9]+-(amd64|arm64)[\\/]bin[\\/]anvil/,
    );
  });

  it("starts two independent nodes with funded development accounts, and stops them", async () => {
    const [a, b] = await Promise.all([startAnvil(), startAnvil()]);
    try {
      expect(a.port).not.toBe(b.port);
      const client = createPublicClient({ transport: http(a.url) });
      expect(await client.getChainId()).toBe(ANVIL_CHAIN_ID);
      expect(await client.getBalance({ address: anvilAccount(0).address })).toBe(
        ANVIL_ACCOUNT_BALANCE,
      );
      expect(anvilAccount(0).address).toBe("0xf39Fd6e51aad88F6F4ce6aB8827279cffFb92266");
    } finally {
      await a.stop();
      await b.stop();
      await b.stop();
    }
    expect(await answers(a.url)).toBe(false);
    expect(await answers(b.url)).toBe(false);
  });

  it("does not outlive the process that started it", async () => {
    const code = [
      `import { startAnvil } from ${JSON.stringify(join(import.meta.dirname, "anvil.ts"))};`,
      "const a = await startAnvil();",
      "console.log(a.url);",
      "process.exit(0);",
    ].join("\n");
    const { stdout } = await promisify(execFile)(
      process.execPath,
      ["--import", "tsx", "--input-type=module", "-e", code],
      { timeout: 60_000 },
    );
    const url = stdout.trim();
    expect(url).toMatch(/^http:\/\/127\.0\.0\.1:\d+$/);
    // SIGKILL is delivered at once; allow the kernel a moment to close the socket.
    let alive = true;
    for (let i = 0; i < 100 && alive; i++) {
      alive = await answers(url);
      if (alive) await new Promise((r) => setTimeout(r, 50));
    }
    expect(alive).toBe(false);
  });

  it("fails with ANVIL_UNAVAILABLE when its port is taken", async () => {
    const srv = createServer();
    await new Promise<void>((r) => srv.listen(0, "127.0.0.1", r));
    const addr = srv.address();
    const port = typeof addr === "object" && addr ? addr.port : 0;
    try {
      const err = await startAnvil({ port, startTimeoutMs: 5000 }).catch((e: unknown) => e);
      expect(err).toBeInstanceOf(AnvilUnavailableError);
      expect((err as AnvilUnavailableError).code).toBe("ANVIL_UNAVAILABLE");
    } finally {
      srv.close();
    }
  });
});
