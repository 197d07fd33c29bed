import { defineConfig } from "vitest/config";

export default defineConfig({
  test: {
    include: ["src/**/*.test.ts"],
    // Child processes of the built binaries: give them time on a busy two-core machine.
    testTimeout: 120_000,
    hookTimeout: 60_000,
  },
});
