// The explorer: a few static files (HTML, one stylesheet, ES modules) served at / and /explorer/*.
// No build step and no framework: the browser renders the public JSON API itself. The files are
// read once at start and served from memory under a strict Content-Security-Policy (scripts,
// styles and requests from this origin only; no inline script), and are not part of the API
// (hidden from the OpenAPI document).
import { readdirSync, readFileSync } from "node:fs";
import path from "node:path";
import { fileURLToPath } from "node:url";
import type { FastifyInstance } from "fastify";

/** Where the explorer's files live (apps/relay/explorer). */
export const explorerDir = fileURLToPath(new URL("../explorer/", import.meta.url));

const contentTypes: Record<string, string> = {
  ".html": "text/html; charset=utf-8",
  ".js": "text/javascript; charset=utf-8",
  ".css": "text/css; charset=utf-8",
  ".svg": "image/svg+xml",
};

export const explorerCsp = [
  "default-src 'none'",
  "script-src 'self'",
  "style-src 'self'",
  "img-src 'self' data:",
  "connect-src 'self'",
  "base-uri 'none'",
  "form-action 'none'",
  "frame-ancestors 'none'",
].join("; ");

interface Asset {
  body: Buffer;
  type: string;
}

function loadAssets(): Map<string, Asset> {
  const assets = new Map<string, Asset>();
  for (const name of readdirSync(explorerDir)) {
    const type = contentTypes[path.extname(name)];
    if (type) assets.set(name, { body: readFileSync(path.join(explorerDir, name)), type });
  }
  return assets;
}

export function registerExplorer(app: FastifyInstance) {
  const assets = loadAssets();
  const serve = (asset: Asset, cache: string) => ({
    method: "GET" as const,
    schema: { hide: true },
    handler: async (_req: unknown, reply: import("fastify").FastifyReply) =>
      reply
        .header("content-type", asset.type)
        .header("content-security-policy", explorerCsp)
        .header("x-content-type-options", "nosniff")
        .header("referrer-policy", "no-referrer")
        .header("cache-control", cache)
        .send(asset.body),
  });
  const index = assets.get("index.html");
  if (index) app.route({ url: "/", ...serve(index, "no-cache") });
  for (const [name, asset] of assets) {
    if (name === "index.html") continue;
    app.route({ url: `/explorer/${name}`, ...serve(asset, "no-cache") });
  }
}
