import { defineConfig } from "vitest/config";

const long = process.env.REKEY_ADVERSARIAL_LONG === "1";

export default defineConfig({
  test: {
    include: ["src/**/*.test.ts"],
    // A throwaway PostgreSQL (or REKEY_TEST_PG_URL) for the PostgreSQL rows and kill loop.
    globalSetup: ["./vitest.postgres-setup.ts"],
    // One file at a time: each drives child processes, and the machine has two cores.
    fileParallelism: false,
    // The kill suites' configurations (`it.concurrent`) run two at a time, one per core.
    maxConcurrency: 2,
    testTimeout: long ? 6 * 60 * 60_000 : 240_000,
    hookTimeout: 120_000,
  },
});
