// The production image (Dockerfile) and docker-compose.yml, read as files: no Docker engine is
// needed (nor assumed) to check their wiring. Each check is something an operator relies on:
// signals reach node, nothing runs as root, nothing starts before what it needs is healthy,
// Docker never kills a process still within its shutdown grace, no port is public, no secret
// has a default or sits in the environment, and Redis neither loses nor evicts the queues.
import { execFile } from "node:child_process";
import { existsSync, readFileSync } from "node:fs";
import path from "node:path";
import { fileURLToPath } from "node:url";
import { promisify } from "node:util";
import { aggregatorEnv, fileVariables, relayEnv, serveMetrics } from "@prover-boost/config";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { parse } from "yaml";
import { type Stack, startStack } from "./harness.ts";

/**
 * Node's Active LTS major: 26 since October 2026 (24 is in maintenance). Raise it, with the
 * Dockerfile's FROM lines, when the next even major becomes Active LTS.
 */
const ACTIVE_LTS_NODE_MAJOR = 26;

const root = path.resolve(path.dirname(fileURLToPath(import.meta.url)), "..");
const run = promisify(execFile);

interface Instruction {
  op: string;
  args: string;
}

/** The Dockerfile's stages: instructions with continuation lines joined, comments dropped. */
function dockerStages(text: string): Instruction[][] {
  const joined = text
    .split("\n")
    .filter((l) => !/^\s*#/.test(l))
    .join("\n")
    .replace(/\\\n/g, " ");
  const stages: Instruction[][] = [];
  for (const line of joined.split("\n")) {
    const m = /^\s*([A-Za-z]+)\s+(.*)$/.exec(line);
    if (!m) continue;
    const ins = { op: m[1]!.toUpperCase(), args: m[2]!.trim() };
    if (ins.op === "FROM") stages.push([]);
    stages.at(-1)?.push(ins);
  }
  return stages;
}

/** An exec-form (JSON array) instruction's argv. */
const execForm = (args: string): string[] => {
  const argv = JSON.parse(args) as unknown;
  expect(Array.isArray(argv), `exec form expected: ${args}`).toBe(true);
  return argv as string[];
};

/** Compose durations ("30s", "1m30s", "500ms") in milliseconds. */
function durationMs(value: string): number {
  const parts = [...value.matchAll(/(\d+(?:\.\d+)?)(ms|h|m|s)/g)];
  expect(parts.map((p) => p[0]).join(""), `duration ${value}`).toBe(value);
  const unit = { ms: 1, s: 1000, m: 60_000, h: 3_600_000 } as const;
  return parts.reduce((t, p) => t + Number(p[1]) * unit[p[2] as keyof typeof unit], 0);
}

/** The entries an app's build emits (dist/<name>.js → source), from its tsdown.config.ts. */
async function builtEntries(app: string): Promise<Record<string, string>> {
  const config = (await import(path.join(root, "apps", app, "tsdown.config.ts"))) as {
    default: { entry: Record<string, string> }[];
  };
  return config.default[0]!.entry;
}

/**
 * A service's entry as it runs: node itself (no npm in front of it, no TypeScript loader) on a
 * file of the app's dist/ that its build emits from a source that exists.
 */
async function expectNodeEntry(argv: string[]) {
  expect(argv.join(" ")).not.toMatch(/\b(npm|npx|yarn|pnpm|tsx)\b/);
  expect(argv[0]).toBe("node");
  const m = /^apps\/([a-z]+)\/dist\/([a-z-]+)\.js$/.exec(argv[1]!);
  expect(m, `${argv[1]} is apps/<app>/dist/<entry>.js`).not.toBeNull();
  const source = (await builtEntries(m![1]!))[m![2]!];
  expect(source, `the build of apps/${m![1]} emits ${argv[1]}`).toBeDefined();
  expect(existsSync(path.join(root, "apps", m![1]!, source!)), `${source} exists`).toBe(true);
}

type Service = {
  image?: string;
  build?: unknown;
  command?: string[];
  environment?: Record<string, string>;
  ports?: string[];
  restart?: string;
  stop_grace_period?: string;
  depends_on?: Record<string, { condition: string }>;
  healthcheck?: { test?: string[]; disable?: boolean };
  secrets?: string[];
  volumes?: string[];
  deploy?: { replicas?: number };
};
type Compose = {
  services: Record<string, Service>;
  secrets: Record<string, { file?: string; environment?: string }>;
  volumes: Record<string, unknown>;
};

const dockerfile = readFileSync(path.join(root, "Dockerfile"), "utf8");
const stages = dockerStages(dockerfile);
const runtime = stages.at(-1)!;
const last = (op: string) => runtime.filter((i) => i.op === op).at(-1);
/** Every RUN of the stages before the runtime stage, as one shell line. */
const buildRuns = () =>
  stages
    .slice(0, -1)
    .flat()
    .filter((i) => i.op === "RUN")
    .map((i) => i.args)
    .join(" && ");
const compose = parse(readFileSync(path.join(root, "docker-compose.yml"), "utf8"), {
  merge: true,
}) as Compose;
const services = compose.services;
const apps = ["relay", "aggregator", "worker"] as const;

describe("Dockerfile", () => {
  it("is multi-stage: dependencies installed with npm ci in a build stage", () => {
    expect(stages.length).toBeGreaterThanOrEqual(2);
    const build = stages.slice(0, -1).flat();
    expect(build.some((i) => i.op === "RUN" && /\bnpm ci\b/.test(i.args))).toBe(true);
    expect(runtime.some((i) => i.op === "COPY" && /--from=/.test(i.args))).toBe(true);
  });

  it("runs on the current Active LTS Node major, slim, the same in every stage", () => {
    for (const stage of stages) {
      const m = /^node:(\d+)-[a-z]+-slim(\s|$)/.exec(stage[0]!.args);
      expect(m, stage[0]!.args).not.toBeNull();
      expect(Number(m![1]), stage[0]!.args).toBe(ACTIVE_LTS_NODE_MAJOR);
    }
    expect(new Set(stages.map((s) => s[0]!.args.split(/\s/)[0])).size).toBe(1);
  });

  it("runs as a non-root user", () => {
    const user = last("USER");
    expect(user).toBeDefined();
    expect(user!.args).not.toMatch(/^(root|0)(:|$)/);
  });

  it("starts node under tini, never through npm", async () => {
    const entry = execForm(last("ENTRYPOINT")!.args);
    expect(entry[0]).toMatch(/(^|\/)tini$/);
    expect(runtime.some((i) => i.op === "RUN" && /install[^&]*\btini\b/.test(i.args))).toBe(true);
    const cmd = execForm(last("CMD")!.args);
    await expectNodeEntry(cmd);
    expect(entry.join(" ")).not.toMatch(/\bnpm\b/);
  });

  it("builds dist/ in the build stage, before dropping the build tools", () => {
    const runs = buildRuns();
    const build = runs.search(/\bnpm run build\b/);
    const prune = runs.search(/\bnpm prune --omit=dev\b/);
    expect(build).toBeGreaterThanOrEqual(0);
    expect(prune).toBeGreaterThan(build);
    // The build's tools are development dependencies: pruned from what the runtime stage copies.
    const manifest = JSON.parse(readFileSync(path.join(root, "package.json"), "utf8")) as {
      devDependencies: Record<string, string>;
    };
    expect(manifest.devDependencies.tsdown).toBeDefined();
    expect(manifest.devDependencies.turbo).toBeDefined();
  });

  it("copies no tool the services do not load: dev dependencies, the Prisma CLI, TypeScript", () => {
    const runs = buildRuns();
    const prune = runs.search(/\bnpm prune --omit=dev\b/);
    const removal = /\brm -rf ([^&]*)/.exec(runs.slice(prune));
    expect(removal, "an rm -rf after the prune").not.toBeNull();
    const removed = removal![1]!.split(/\s+/);
    for (const dir of ["node_modules/prisma", "node_modules/effect", "node_modules/typescript"]) {
      expect(removed).toContain(dir);
    }
    // Nothing the services import is removed.
    for (const dir of removed.filter((d) => d.length > 0)) {
      expect(dir).not.toMatch(/@prisma\/client|@prisma\/adapter|@aztec\/bb\.js$|@noir-lang/);
    }
    // The local-L1 tools reach the build stage only as development dependencies, so the prune
    // drops them.
    const escrow = JSON.parse(
      readFileSync(path.join(root, "packages", "escrow", "package.json"), "utf8"),
    ) as { dependencies: Record<string, string>; devDependencies?: Record<string, string> };
    for (const tool of ["@foundry-rs/anvil", "solc"]) {
      expect(escrow.dependencies[tool], tool).toBeUndefined();
      expect(escrow.devDependencies?.[tool], tool).toBeDefined();
    }
  });

  it("has a HEALTHCHECK on the relay's /readyz without curl", () => {
    const hc = last("HEALTHCHECK");
    expect(hc).toBeDefined();
    expect(hc!.args).toMatch(/\/readyz/);
    expect(hc!.args).not.toMatch(/\b(curl|wget)\b/);
  });
});

describe("the health-check one-liners, run against a relay", () => {
  let stack: Stack;
  beforeAll(async () => {
    stack = await startStack({ aggregator: false });
  });
  afterAll(async () => {
    await stack?.close();
  });
  const port = () => new URL(stack.url).port;
  /** The node -e script of the Dockerfile's HEALTHCHECK, and of compose's relay check. */
  const scripts = () => {
    const image = execForm(last("HEALTHCHECK")!.args.replace(/^.*?\bCMD\s+/, ""));
    const composed = services.relay!.healthcheck!.test as string[];
    return { image: image.at(-1)!, composed: composed.at(-1)! };
  };

  it("the image's check passes on a ready relay and fails with none listening", async () => {
    const { image } = scripts();
    await expect(
      run(process.execPath, ["-e", image], { env: { ...process.env, PORT: port() } }),
    ).resolves.toBeDefined();
    // A port nothing listens on (the relay's, closed below, is not reused in this test).
    await expect(
      run(process.execPath, ["-e", image], { env: { ...process.env, PORT: "1" } }),
    ).rejects.toMatchObject({ code: 1 });
  });

  it("compose's check asks the same endpoint on the port compose publishes", () => {
    const { composed } = scripts();
    expect(composed).toContain("http://127.0.0.1:8080/readyz");
    expect(services.relay!.environment!.PORT).toBe("8080");
    const script = composed.replace("127.0.0.1:8080", `127.0.0.1:${port()}`);
    return expect(run(process.execPath, ["-e", script])).resolves.toBeDefined();
  });
});

describe("the aggregator's and the worker's health checks, run against a metrics endpoint", () => {
  /** A service's compose check: its node -e script, and the port it asks. */
  const check = (app: "aggregator" | "worker") => {
    const script = (services[app]!.healthcheck!.test as string[]).at(-1)!;
    const m = /http:\/\/127\.0\.0\.1:(\d+)\/metrics/.exec(script);
    expect(m, `${app}'s check asks its /metrics`).not.toBeNull();
    return { script, port: m![1]! };
  };

  it("asks /metrics on the port each service serves its metrics on", () => {
    for (const app of ["aggregator", "worker"] as const) {
      expect(check(app).port, app).toBe(services[app]!.environment!.METRICS_PORT);
      expect(services[app]!.environment!.METRICS_HOST, app).toBe("0.0.0.0");
    }
  });

  it("passes while the endpoint serves and fails with none listening", async () => {
    const server = await serveMetrics(
      { contentType: "text/plain", metrics: async () => "up 1\n" },
      { port: 0, host: "127.0.0.1", ephemeral: true },
    );
    try {
      for (const app of ["aggregator", "worker"] as const) {
        const { script, port } = check(app);
        const live = script.replace(`127.0.0.1:${port}`, `127.0.0.1:${server.port}`);
        await expect(run(process.execPath, ["-e", live]), app).resolves.toBeDefined();
        const none = script.replace(`127.0.0.1:${port}`, "127.0.0.1:1");
        await expect(run(process.execPath, ["-e", none]), app).rejects.toMatchObject({ code: 1 });
      }
    } finally {
      await server.close();
    }
  });
});

describe("docker-compose.yml", () => {
  it("runs Postgres, Redis, the relay, one aggregator and a worker, all from the one image", async () => {
    expect(Object.keys(services).sort()).toEqual(
      ["aggregator", "postgres", "redis", "relay", "worker"].sort(),
    );
    for (const app of apps) {
      expect(services[app]!.build).toBe(".");
      await expectNodeEntry(services[app]!.command!);
    }
    expect(services.aggregator!.deploy?.replicas).toBe(1);
  });

  it("restarts and health-checks every service", () => {
    for (const [name, s] of Object.entries(services)) {
      expect(s.restart, name).toMatch(/^(unless-stopped|always|on-failure)/);
      expect(s.healthcheck?.disable, name).not.toBe(true);
      expect(s.healthcheck?.test?.length, name).toBeGreaterThan(0);
    }
    expect(services.postgres!.healthcheck!.test!.join(" ")).toMatch(/pg_isready/);
    expect(services.redis!.healthcheck!.test!.join(" ")).toMatch(/redis-cli.*ping/);
    expect(services.relay!.healthcheck!.test!.join(" ")).toMatch(/\/readyz/);
    for (const app of ["aggregator", "worker"] as const) {
      expect(services[app]!.healthcheck!.test!.join(" "), app).toMatch(/\/metrics\b/);
      expect(services[app]!.healthcheck!.test!.join(" "), app).not.toMatch(/\b(curl|wget)\b/);
    }
  });

  it("starts nothing before what it depends on is healthy", () => {
    for (const app of apps) {
      const deps = Object.entries(services[app]!.depends_on ?? {});
      expect(deps.length, app).toBeGreaterThan(0);
      for (const [dep, { condition }] of deps) {
        expect(condition, `${app} -> ${dep}`).toBe("service_healthy");
        expect(services[dep]!.healthcheck?.disable, dep).not.toBe(true);
      }
    }
    expect(Object.keys(services.relay!.depends_on!).sort()).toEqual(["postgres", "redis"]);
    expect(Object.keys(services.aggregator!.depends_on!).sort()).toEqual(["postgres", "redis"]);
    expect(Object.keys(services.worker!.depends_on!)).toEqual(["relay"]);
  });

  it("gives every app longer to stop than its SHUTDOWN_GRACE_MS", () => {
    for (const app of apps) {
      const s = services[app]!;
      const grace = Number(s.environment!.SHUTDOWN_GRACE_MS);
      expect(grace, app).toBeGreaterThan(0);
      expect(durationMs(s.stop_grace_period!), app).toBeGreaterThan(grace);
    }
  });

  it("publishes ports on 127.0.0.1 only", () => {
    for (const [name, s] of Object.entries(services)) {
      for (const port of s.ports ?? []) expect(port, name).toMatch(/^127\.0\.0\.1:\d+:\d+$/);
    }
  });

  it("has no secret in the environment: secrets come from files via compose secrets", () => {
    const supported = new Set([
      ...fileVariables.map((v) => `${v}_FILE`),
      "SETTLER_KEY_FILE",
      "OPERATOR_KEY_FILE",
      "POSTGRES_PASSWORD_FILE",
    ]);
    for (const [name, s] of Object.entries(services)) {
      for (const [key, value] of Object.entries(s.environment ?? {})) {
        if (key.endsWith("_FILE")) {
          expect(supported.has(key), `${name}.${key} is read by the service`).toBe(true);
          const m = /^\/run\/secrets\/([a-z_]+)$/.exec(value);
          expect(m, `${name}.${key}`).not.toBeNull();
          expect(s.secrets, name).toContain(m![1]);
          expect(compose.secrets[m![1]!]?.file, m![1]).toMatch(/^\.\/secrets\//);
          continue;
        }
        expect(key, `${name}: a secret in the environment`).not.toMatch(
          /TOKEN|PASSWORD|SECRET|_KEY$|^DATABASE_URL$/,
        );
        expect(String(value), `${name}.${key}`).not.toMatch(/change-?me|:\/\/[^/]*:[^@/]*@/i);
      }
    }
    expect(services.relay!.environment!.ADMIN_TOKEN_FILE).toBe("/run/secrets/admin_token");
  });

  it("requires the signing domain and passes only settings the services read", () => {
    for (const app of ["relay", "aggregator"] as const) {
      const env = services[app]!.environment!;
      expect(env.CHAIN_ID).toMatch(/^\$\{CHAIN_ID:\?.+\}$/);
      expect(env.VERIFYING_CONTRACT).toMatch(/^\$\{VERIFYING_CONTRACT:\?.+\}$/);
      const schema = app === "relay" ? relayEnv : aggregatorEnv;
      const known = new Set([
        ...Object.keys(schema.shape),
        ...fileVariables.map((v) => `${v}_FILE`),
      ]);
      for (const key of Object.keys(env)) expect(known.has(key), `${app}.${key}`).toBe(true);
    }
    expect(services.relay!.environment!.TRUST_PROXY).toBe(["$", "{TRUST_PROXY:-false}"].join(""));
  });

  it("keeps Redis durable (AOF) and never evicting; Postgres on a named volume", () => {
    const cmd = services.redis!.command!.join(" ");
    expect(cmd).toMatch(/--appendonly yes/);
    expect(cmd).toMatch(/--maxmemory-policy noeviction/);
    // noeviction applies only under a memory limit: one is set, configurable, with a default.
    const limit = /--maxmemory \$\{REDIS_MAXMEMORY:-(\d+)(kb|mb|gb)\}(\s|$)/.exec(cmd);
    expect(limit, "--maxmemory from REDIS_MAXMEMORY, with a default").not.toBeNull();
    const mb = Number(limit![1]) * { kb: 1 / 1024, mb: 1, gb: 1024 }[limit![2] as "kb"];
    expect(mb).toBeGreaterThanOrEqual(256);
    for (const db of ["postgres", "redis"] as const) {
      const [volume, target] = services[db]!.volumes![0]!.split(":");
      expect(Object.keys(compose.volumes), db).toContain(volume);
      expect(target).toBe(db === "postgres" ? "/var/lib/postgresql/data" : "/data");
    }
  });
});

describe("the npm run scripts that start a service", () => {
  // `npm start`, `npm run relay` and the like end in the program's own node process, with tsx
  // loaded into it (`node --import tsx`), never under the tsx command: that command runs the
  // program in a second node process, so a SIGKILL of the process a supervisor or an operator
  // sees left the program, and with the devnet its Redis and anvil, running on.
  const scriptsOf = (file: string) =>
    (JSON.parse(readFileSync(path.join(root, file), "utf8")) as { scripts: Record<string, string> })
      .scripts;
  const services: [string, string][] = [
    ...["start", "relay", "aggregator", "worker"].map((s): [string, string] => ["package.json", s]),
    ...["devnet", "relay", "aggregator", "worker"].map((app): [string, string] => [
      `apps/${app}/package.json`,
      "start",
    ]),
  ];

  it.each(services)("%s's %s runs its program in node itself", (file, name) => {
    const script = scriptsOf(file)[name];
    expect(script, `${file} ${name}`).toBeDefined();
    const last = script!.split("&&").at(-1)!.trim();
    expect(last).toMatch(/^node --import tsx \S+\.ts(\s|$)/);
    const entry = last.split(/\s+/)[3]!;
    const dir = path.dirname(path.join(root, file));
    expect(existsSync(path.join(dir, entry)), `${file} ${name}: ${entry}`).toBe(true);
  });
});
