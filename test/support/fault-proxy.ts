// A TCP proxy on a loopback port in front of a real dependency (Redis, Postgres), for fault
// tests: point a service at `url` and then stall the link (bytes held, sockets kept open, as a
// hung server or a partitioned network looks), cut it (every socket reset and new connections
// refused, as a dead or restarting server looks) and restore it. Nothing is mocked: the service
// talks to the real server through it.
import { createServer, type Server, type Socket } from "node:net";

export type ProxyState = "up" | "stalled" | "down";

export interface FaultProxy {
  /** The target URL with host and port replaced by the proxy's. */
  url: string;
  port: number;
  state(): ProxyState;
  /** Holds every byte in both directions; connections stay open. */
  stall(): void;
  /** Resets every connection and refuses new ones until restored. */
  cut(): void;
  /** Forwards again (held bytes are delivered in order). */
  restore(): void;
  /** How many client connections are open through the proxy now. */
  connections(): number;
  close(): Promise<void>;
}

interface Pair {
  client: Socket;
  server: Socket;
}

/** Starts a proxy to the host and port of `targetUrl` (redis://, postgresql://, ...). */
export async function startFaultProxy(targetUrl: string): Promise<FaultProxy> {
  const target = new URL(targetUrl);
  const targetPort = Number(target.port);
  const targetHost = target.hostname;
  const pairs = new Set<Pair>();
  let state: ProxyState = "up";

  // Unpiped and paused, a socket keeps what it reads buffered; piping again delivers it.
  const hold = (p: Pair) => {
    p.client.unpipe(p.server);
    p.server.unpipe(p.client);
    p.client.pause();
    p.server.pause();
  };
  const flow = (p: Pair) => {
    p.client.pipe(p.server);
    p.server.pipe(p.client);
  };

  const server: Server = createServer((client) => {
    if (state === "down") {
      client.resetAndDestroy();
      return;
    }
    const upstream = new (client.constructor as typeof Socket)();
    const pair: Pair = { client, server: upstream };
    pairs.add(pair);
    const end = () => {
      pairs.delete(pair);
      client.destroy();
      upstream.destroy();
    };
    client.on("error", end);
    upstream.on("error", end);
    client.on("close", end);
    upstream.on("close", end);
    upstream.connect(targetPort, targetHost);
    if (state === "stalled") hold(pair);
    else flow(pair);
  });
  await new Promise<void>((resolve, reject) => {
    server.once("error", reject);
    server.listen(0, "127.0.0.1", () => resolve());
  });
  const addr = server.address();
  const port = typeof addr === "object" && addr ? addr.port : 0;
  const url = new URL(targetUrl);
  url.hostname = "127.0.0.1";
  url.port = String(port);

  return {
    url: url.toString(),
    port,
    state: () => state,
    stall() {
      if (state === "up") for (const p of pairs) hold(p);
      state = "stalled";
    },
    cut() {
      state = "down";
      for (const p of pairs) {
        p.client.resetAndDestroy();
        p.server.destroy();
      }
      pairs.clear();
    },
    restore() {
      if (state === "stalled") for (const p of pairs) flow(p);
      state = "up";
    },
    connections: () => pairs.size,
    async close() {
      state = "down";
      for (const p of pairs) {
        p.client.destroy();
        p.server.destroy();
      }
      pairs.clear();
      await new Promise<void>((resolve) => server.close(() => resolve()));
    },
  };
}
