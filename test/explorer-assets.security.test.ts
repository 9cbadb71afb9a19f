// The explorer's files as the relay serves them: the page and every module it loads come from
// the relay's origin under a Content-Security-Policy that allows no inline script, with their
// content types and nosniff; nothing else under /explorer/ is served; the explorer is not part
// of the API document; and no explorer module writes markup from strings (innerHTML and the like),
// so no API string can become markup.
import { readdirSync, readFileSync } from "node:fs";
import path from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { type Stack, startStack } from "./harness.ts";

const dir = path.resolve(import.meta.dirname, "../apps/relay/explorer");
let stack: Stack;

beforeAll(async () => {
  stack = await startStack({ backend: "postgres", aggregator: false });
});
afterAll(async () => stack?.close());

const get = (url: string) => stack.relay.app.inject({ method: "GET", url });

describe("explorer files", () => {
  it("serves the page at / with a strict CSP and no inline script", async () => {
    const res = await get("/");
    expect(res.statusCode).toBe(200);
    expect(res.headers["content-type"]).toBe("text/html; charset=utf-8");
    const csp = String(res.headers["content-security-policy"]);
    expect(csp).toContain("default-src 'none'");
    expect(csp).toContain("script-src 'self'");
    expect(csp).not.toContain("unsafe-inline");
    expect(res.headers["x-content-type-options"]).toBe("nosniff");
    // Every <script> has a src; no inline handlers.
    const scripts = [...res.body.matchAll(/<script\b([^>]*)>([\s\S]*?)<\/script>/g)];
    expect(scripts.length).toBeGreaterThan(0);
    for (const [, attrs, body] of scripts) {
      expect(attrs).toMatch(/\bsrc="\/explorer\/[\w.-]+\.js"/);
      expect(body!.trim()).toBe("");
    }
    expect(res.body).not.toMatch(/\son[a-z]+=/i);
  });

  it("serves every module the page loads, and each module's imports, with their types", async () => {
    const page = (await get("/")).body;
    const queue = [...page.matchAll(/(?:src|href)="(\/explorer\/[\w.-]+)"/g)].map((m) => m[1]!);
    const seen = new Set<string>();
    while (queue.length > 0) {
      const url = queue.shift()!;
      if (seen.has(url)) continue;
      seen.add(url);
      const res = await get(url);
      expect(res.statusCode, url).toBe(200);
      const type = url.endsWith(".js")
        ? "text/javascript; charset=utf-8"
        : url.endsWith(".css")
          ? "text/css; charset=utf-8"
          : "image/svg+xml";
      expect(res.headers["content-type"], url).toBe(type);
      expect(res.headers["content-security-policy"], url).toContain("script-src 'self'");
      if (url.endsWith(".js")) {
        for (const m of res.body.matchAll(/from "\.\/([\w.-]+\.js)"/g))
          queue.push(`/explorer/${m[1]}`);
      }
    }
    expect([...seen].sort()).toEqual(
      expect.arrayContaining([
        "/explorer/api.js",
        "/explorer/app.js",
        "/explorer/dom.js",
        "/explorer/style.css",
        "/explorer/tree.js",
      ]),
    );
  });

  it("serves nothing else under /explorer/ (404 in the usual error shape)", async () => {
    for (const url of [
      "/explorer/",
      "/explorer/missing.js",
      "/explorer/../package.json",
      "/explorer/%2e%2e/src/explorer.ts",
      "/explorer/index.html/x",
    ]) {
      const res = await get(url);
      expect(res.statusCode, url).toBe(404);
      expect(Object.keys(res.json()), url).toEqual(["error"]);
    }
  });

  it("is not part of the API document", async () => {
    const doc = (await get("/docs/json")).json() as { paths: Record<string, unknown> };
    expect(Object.keys(doc.paths).filter((p) => p === "/" || p.startsWith("/explorer"))).toEqual(
      [],
    );
  });

  it("never builds markup from strings in its modules", () => {
    const modules = readdirSync(dir).filter((f) => f.endsWith(".js"));
    expect(modules.length).toBeGreaterThan(0);
    for (const f of modules) {
      const src = readFileSync(path.join(dir, f), "utf8");
      expect(src, f).not.toMatch(
        /innerHTML|outerHTML|insertAdjacentHTML|document\.write|eval\(|new Function/,
      );
    }
  });
});
