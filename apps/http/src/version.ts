// Replaced at build time by esbuild (build.mjs) and in tests by vitest.config.ts, so that
// `rekey-http --version` reads no file at startup.
declare const __REKEY_VERSION__: string | undefined;

/** The version of @rekey/http. */
export const VERSION: string =
  typeof __REKEY_VERSION__ === "string" ? __REKEY_VERSION__ : "0.0.0-dev";
