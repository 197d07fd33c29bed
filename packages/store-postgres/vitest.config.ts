import { defineConfig } from "vitest/config";

export default defineConfig({
  test: {
    include: ["src/**/*.test.ts"],
    globalSetup: ["src/postgres.global-setup.ts"],
    setupFiles: ["src/keys-at-rest.setup.ts"],
    testTimeout: 20_000,
    hookTimeout: 30_000,
  },
});
