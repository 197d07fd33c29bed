// The installed `rekey` command (dist/rekey.cjs). It is CommonJS on purpose: node starts a
// CommonJS file as fast as `node -e 0`, while any ES module entry costs about 20% more, and that
// is all `rekey --version` should cost. Everything else is the CLI bundle, dist/cli.cjs, run with
// a V8 code cache (src/code-cache.ts).
import { VERSION } from "./version.js";

/** The SHA-256 of dist/cli.cjs (hex, shortened), written in at build time: the cache's key. */
declare const __REKEY_BUNDLE_HASH__: string;

/** Runs dist/cli.cjs through the code cache in the user's cache directory. */
async function runCli(): Promise<void> {
  // import()s, which the build turns into modules of this file evaluated here: --version must
  // not pay for the built-ins the code cache needs (vm, crypto, os).
  const { homedir } = await import("node:os");
  const { codeCacheLocation, runWithCodeCache } = await import("./code-cache.js");
  runWithCodeCache(
    `${__dirname}/cli.cjs`,
    codeCacheLocation(process.env, homedir(), __REKEY_BUNDLE_HASH__),
  );
}

const args = process.argv.slice(2);
if (args.length === 1 && (args[0] === "--version" || args[0] === "-v")) {
  process.stdout.write(`${VERSION}\n`);
} else {
  void runCli();
}
