import { readFileSync } from "node:fs";
import { defineConfig } from "vitest/config";

const { version } = JSON.parse(readFileSync(new URL("./package.json", import.meta.url), "utf8"));

export default defineConfig({
  define: { __REKEY_VERSION__: JSON.stringify(version) },
  test: {
    include: ["src/**/*.test.ts"],
    globalSetup: ["../../scripts/vitest-build-first.mjs", "./vitest.postgres-setup.ts"],
    setupFiles: ["./src/keys-at-rest.setup.ts"],
    testTimeout: 20_000,
    hookTimeout: 20_000,
  },
});
