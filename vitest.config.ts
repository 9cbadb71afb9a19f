import { configDefaults, defineConfig } from "vitest/config";

// One run covers the whole repo. Unit tests (packages/core, packages/config) are pure; integration tests talk to
// a real Redis and Postgres (TEST_REDIS_URL, TEST_DATABASE_URL) and the embedded PGlite, each
// test file in its own Postgres schema / Redis key prefix.
/** Integration tests that inject faults into real processes over minutes (see "faults" below). */
const faultFiles = [
  "test/faults-*.test.ts",
  "test/resources.happy.test.ts",
  "test/redis-restart.error.test.ts",
];

export default defineConfig({
  test: {
    projects: [
      {
        extends: true,
        test: {
          name: "core",
          include: [
            "packages/core/src/**/*.test.ts",
            "packages/config/src/**/*.test.ts",
            "packages/contract/src/**/*.test.ts",
          ],
          // Property tests run thousands of cases: on a busy machine that takes longer than
          // Vitest's 5 s default, and no test may depend on the machine's speed.
          testTimeout: 120_000,
        },
      },
      {
        // The proof systems: sim, and honk's real UltraHonk proofs (compiling circuits and
        // proving in WASM take seconds each on a busy machine).
        extends: true,
        test: {
          name: "proofs",
          include: ["packages/proofs/src/**/*.test.ts"],
          testTimeout: 300_000,
          hookTimeout: 300_000,
        },
      },
      {
        extends: true,
        test: {
          name: "integration",
          include: [
            "packages/{db,queue,sdk,escrow}/src/**/*.test.ts",
            "apps/*/src/**/*.test.ts",
            "test/**/*.test.ts",
          ],
          exclude: [...configDefaults.exclude, ...faultFiles],
          testTimeout: 60_000,
          hookTimeout: 60_000,
        },
      },
      {
        // The fault suite and the long soaks run services as processes of their own and keep
        // both cores busy for minutes: they run after everything else, and one file at a time,
        // so no other test shares the machine with them (side by side, a Redis outage's scenario
        // once lost honest leases on the starved machine).
        extends: true,
        test: {
          name: "faults",
          include: [...faultFiles],
          fileParallelism: false,
          testTimeout: 600_000,
          hookTimeout: 120_000,
          sequence: { groupOrder: 1 },
        },
      },
    ],
    pool: "forks",
    maxWorkers: 2,
  },
});
