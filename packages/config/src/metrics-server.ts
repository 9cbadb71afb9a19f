// A minimal Prometheus endpoint for the services that have no HTTP server of their own (the
// aggregator and the worker agent): GET /metrics answers the registry's text; anything else 404.
import { createServer, type Server } from "node:http";
import type { AddressInfo } from "node:net";

/** What the endpoint serves: a prom-client Registry fits. */
export interface MetricsSource {
  contentType: string;
  metrics(): Promise<string>;
}

export interface MetricsServer {
  /** The port it listens on (the system's choice with `ephemeral`). */
  port: number;
  close(): Promise<void>;
}

/**
 * Listens on `host:port` (METRICS_PORT; the caller skips this when it is 0, which disables the
 * endpoint). `ephemeral`: tests ask for a free port chosen by the system.
 */
export async function serveMetrics(
  source: MetricsSource,
  opts: { port: number; host: string; ephemeral?: boolean },
): Promise<MetricsServer> {
  const server: Server = createServer((req, res) => {
    const path = (req.url ?? "/").split("?")[0];
    if (req.method !== "GET" || path !== "/metrics") {
      res.writeHead(404, { "content-type": "text/plain" }).end("not found\n");
      return;
    }
    source.metrics().then(
      (text) => res.writeHead(200, { "content-type": source.contentType }).end(text),
      () => res.writeHead(500, { "content-type": "text/plain" }).end("metrics failed\n"),
    );
  });
  // A scraper's idle keep-alive connection must not hold the process open on shutdown.
  server.keepAliveTimeout = 5000;
  await new Promise<void>((resolve, reject) => {
    server.once("error", reject);
    server.listen(opts.ephemeral ? 0 : opts.port, opts.host, () => {
      server.off("error", reject);
      resolve();
    });
  });
  return {
    port: (server.address() as AddressInfo).port,
    close: () =>
      new Promise<void>((resolve) => {
        server.close(() => resolve());
        server.closeAllConnections();
      }),
  };
}

/** Wei as a float number of gwei, for counters of money (Prometheus values are doubles; the ledger keeps exact wei). */
export function weiToGwei(wei: bigint): number {
  return Number(wei / 1_000_000_000n) + Number(wei % 1_000_000_000n) / 1e9;
}
