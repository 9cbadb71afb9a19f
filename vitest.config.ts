import { defineConfig } from "vitest/config";

// One run covers the whole repo. Unit tests (packages/core, packages/config) are pure; integration tests talk to
// a real Redis and Postgres (TEST_REDIS_URL, TEST_DATABASE_URL) and the embedded PGlite, each
// test file in its own Postgres schema / Redis key prefix.
export default defineConfig({
  test: {
    projects: [
      {
        extends: true,
        test: {
          name: "core",
          include: ["packages/core/src/**/*.test.ts", "packages/config/src/**/*.test.ts"],
          // Property tests run thousands of cases: on a busy machine that takes longer than
          // Vitest's 5 s default, and no test may depend on the machine's speed.
          testTimeout: 120_000,
        },
      },
      {
        extends: true,
        test: {
          name: "integration",
          include: [
            "packages/{db,queue,sdk}/src/**/*.test.ts",
            "apps/*/src/**/*.test.ts",
            "test/**/*.test.ts",
          ],
          testTimeout: 60_000,
          hookTimeout: 60_000,
        },
      },
    ],
    pool: "forks",
    maxWorkers: 2,
  },
});
