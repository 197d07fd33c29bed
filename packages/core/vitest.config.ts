import { defineConfig } from "vitest/config";

export default defineConfig({
  test: {
    include: ["src/**/*.test.ts"],
    setupFiles: ["src/leak-guard.setup.ts", "src/keys-at-rest.setup.ts"],
    testTimeout: 20_000,
    hookTimeout: 20_000,
  },
});
