import { createServer } from "node:http";
import { privateKeyToAccount } from "viem/accounts";
import { baseJobs, FakeRelay } from "./src/testing/fake-relay.ts";

const relay = new FakeRelay(privateKeyToAccount(`0x${"42".repeat(32)}`).address);
relay.info.leaseMs = 3000;
relay.add(...baseJobs(1, 40));
createServer(async (req, res) => {
  let body = "";
  for await (const c of req) body += c;
  const ac = new AbortController();
  res.on("close", () => ac.abort());
  try {
    const r = await relay.fetch(`http://x${req.url}`, {
      method: req.method,
      headers: req.headers as Record<string, string>,
      body: body || undefined,
      signal: ac.signal,
    });
    res.writeHead(r.status, { "content-type": "application/json" });
    res.end(await r.text());
  } catch {
    res.destroy();
  }
}).listen(18089, () => console.log("listening"));
setInterval(
  () =>
    console.error(
      `accepted=${relay.accepted.size} queue=${relay.queue.length} fails=${relay.fails.length} leases=${relay.leases.size}`,
    ),
  1000,
);
