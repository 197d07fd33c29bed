// Bundles the CLI the way every app is bundled (scripts/bundle-app.mjs): self-contained, `pg` an
// optional peer. The command is two files: dist/rekey.cjs, a small launcher that answers
// --version alone, and dist/cli.cjs, everything else in one CommonJS file that the launcher runs
// with a V8 code cache (src/code-cache.ts). Inside it, commands, core and zod are still modules
// evaluated on first use, so `--help` evaluates commander and nothing else.
import { createHash } from "node:crypto";
import { chmod, readFile } from "node:fs/promises";
import { build } from "esbuild";
import { bundleApp } from "../../scripts/bundle-app.mjs";

const appUrl = new URL("./", import.meta.url);
await bundleApp({
  appUrl,
  entryPoints: { cli: "src/bin.ts", demo: "src/demo.ts" },
  format: "cjs",
  // Each command evaluates the core modules it uses, not all of core (scripts/bundle-app.mjs).
  barrels: ["@rekey/core"],
});

// The launcher keys the code cache by the bundle's hash, computed here once rather than on
// every start.
const bundle = await readFile(new URL("./dist/cli.cjs", appUrl));
const bundleHash = createHash("sha256").update(bundle).digest("hex").slice(0, 16);
const { version } = JSON.parse(await readFile(new URL("./package.json", appUrl), "utf8"));
await build({
  absWorkingDir: new URL(".", appUrl).pathname,
  entryPoints: ["src/launcher.ts"],
  outfile: "dist/rekey.cjs",
  bundle: true,
  format: "cjs",
  platform: "node",
  target: "node20",
  define: {
    __REKEY_VERSION__: JSON.stringify(version),
    __REKEY_BUNDLE_HASH__: JSON.stringify(bundleHash),
  },
  // Its import()s become modules of this file, evaluated only when reached (not for --version).
  supported: { "dynamic-import": false },
  banner: { js: "#!/usr/bin/env node" },
  legalComments: "none",
  logLevel: "warning",
});
await chmod(new URL("./dist/rekey.cjs", appUrl), 0o755);
