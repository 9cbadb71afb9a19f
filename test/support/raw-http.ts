// Raw HTTP over a TCP socket, for what a well-behaved client cannot send: headers past the server's
// limit, malformed request lines. The answer is read until the server closes the connection.
import { connect } from "node:net";

export interface RawAnswer {
  status: number;
  headers: Record<string, string>;
  body: string;
}

/** Writes `request` to 127.0.0.1:`port` and resolves with everything read until the close. */
export function rawRequest(port: number, request: string | Buffer): Promise<string> {
  return new Promise((resolve, reject) => {
    const chunks: Buffer[] = [];
    const s = connect(port, "127.0.0.1", () => {
      // The server may answer and close before it has read everything (a header past its
      // limit): a reset while writing is then expected, and the answer is what was read.
      s.write(request, () => {});
    });
    s.on("data", (c) => chunks.push(c));
    s.on("error", (err: Error & { code?: string }) => {
      if (err.code === "ECONNRESET" || err.code === "EPIPE") return;
      reject(err);
    });
    s.on("close", () => resolve(Buffer.concat(chunks).toString("utf8")));
  });
}

/** Splits a raw HTTP/1.1 answer into status, lower-cased headers and body. */
export function parseAnswer(text: string): RawAnswer {
  const split = text.indexOf("\r\n\r\n");
  const head = split < 0 ? text : text.slice(0, split);
  const body = split < 0 ? "" : text.slice(split + 4);
  const [statusLine = "", ...lines] = head.split("\r\n");
  const headers: Record<string, string> = {};
  for (const l of lines) {
    const i = l.indexOf(":");
    if (i > 0) headers[l.slice(0, i).toLowerCase()] = l.slice(i + 1).trim();
  }
  return { status: Number(statusLine.split(" ")[1]), headers, body };
}

/** The port a listening Fastify app's server is bound to. */
export function portOf(server: { address(): unknown }): number {
  const a = server.address();
  if (!a || typeof a !== "object" || !("port" in a)) throw new Error("not listening");
  return (a as { port: number }).port;
}
