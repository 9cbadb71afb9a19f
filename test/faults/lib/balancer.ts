// A TCP load balancer on a loopback port in front of several relays, as a multi-relay deployment
// puts one in front of its relays: each new connection goes to the next relay in turn, and to the
// one after it when that relay refuses (it is dead). Workers behind it keep working when one relay
// dies: their next request opens a new connection that lands on a live relay.
import { createConnection, createServer, type Socket } from "node:net";

export interface Balancer {
  url: string;
  close(): Promise<void>;
}

export async function startBalancer(targets: string[]): Promise<Balancer> {
  const ports = targets.map((t) => Number(new URL(t).port));
  const sockets = new Set<Socket>();
  let next = 0;
  const server = createServer((client) => {
    sockets.add(client);
    client.on("close", () => sockets.delete(client));
    client.on("error", () => client.destroy());
    client.pause();
    const attempt = (tries: number) => {
      if (tries >= ports.length) return client.destroy();
      const port = ports[next++ % ports.length]!;
      const upstream = createConnection(port, "127.0.0.1");
      sockets.add(upstream);
      let connected = false;
      upstream.once("connect", () => {
        connected = true;
        client.pipe(upstream);
        upstream.pipe(client);
        client.resume();
      });
      upstream.on("error", () => {
        upstream.destroy();
        if (!connected) attempt(tries + 1);
        else client.destroy();
      });
      upstream.on("close", () => {
        sockets.delete(upstream);
        if (connected) client.destroy();
      });
      client.on("close", () => upstream.destroy());
    };
    attempt(0);
  });
  await new Promise<void>((resolve, reject) => {
    server.once("error", reject);
    server.listen(0, "127.0.0.1", () => resolve());
  });
  const addr = server.address();
  const port = typeof addr === "object" && addr ? addr.port : 0;
  return {
    url: `http://127.0.0.1:${port}`,
    async close() {
      for (const s of sockets) s.destroy();
      await new Promise<void>((resolve) => server.close(() => resolve()));
    },
  };
}
