// The CLI as a user runs it against a relay that refuses its sign-in for good: it does not retry
// forever but exits 1 with the relay's message.
import { spawn } from "node:child_process";
import { createServer, type Server } from "node:http";
import type { AddressInfo } from "node:net";
import { fileURLToPath } from "node:url";
import { privateKeyToAccount } from "viem/accounts";
import { afterAll, beforeAll, expect, it } from "vitest";
import { FakeRelay } from "./testing/fake-relay.ts";

const cli = fileURLToPath(new URL("./cli.ts", import.meta.url));
const cwd = fileURLToPath(new URL("..", import.meta.url));
const key = `0x${"42".repeat(32)}` as const;

let server: Server;
let url: string;
beforeAll(async () => {
  const relay = new FakeRelay(privateKeyToAccount(key).address);
  server = createServer((req, res) => {
    if (req.url === "/v1/workers/sessions") {
      res.writeHead(422, { "content-type": "application/json" });
      res.end(
        JSON.stringify({
          error: { code: "TIER_TOO_LOW", message: "tier 0 may lease none of base", requestId: "r" },
        }),
      );
      return;
    }
    void relay
      .fetch(`http://relay.test${req.url}`, { method: req.method ?? "GET" })
      .then(async (answer) => {
        res.writeHead(answer.status, { "content-type": "application/json" });
        res.end(await answer.text());
      });
  });
  await new Promise<void>((r) => server.listen(0, "127.0.0.1", r));
  url = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
});
afterAll(() => new Promise<void>((r) => server.close(() => r())));

it("exits 1 with the relay's message when the relay refuses the sign-in for good", async () => {
  const child = spawn(process.execPath, ["--import", "tsx", cli, "--relay", url], {
    cwd,
    env: {
      PATH: process.env.PATH ?? "",
      HOME: process.env.HOME ?? "",
      OPERATOR_KEY: key,
      JOB_TYPES: "base",
      LOG_LEVEL: "silent",
    },
  });
  let stderr = "";
  child.stderr.setEncoding("utf8").on("data", (d: string) => {
    stderr += d;
  });
  child.stdout.resume();
  const timer = setTimeout(() => child.kill("SIGKILL"), 30_000);
  const code = await new Promise<number | null>((r) => child.on("close", (c) => r(c)));
  clearTimeout(timer);
  expect(code).toBe(1);
  expect(stderr).toMatch(/TIER_TOO_LOW: tier 0 may lease none of base/);
}, 60_000);
