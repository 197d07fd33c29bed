// Bundles the CLI the way every app is bundled (scripts/bundle-app.mjs): self-contained, lazy
// chunks, `pg` an optional peer. `rekey --version` loads only the entry chunk, `--help` adds
// commander, and core and zod load only when a command runs.
import { chmod, readFile } from "node:fs/promises";
import { build } from "esbuild";
import { bundleApp, finishEntry } from "../../scripts/bundle-app.mjs";

const appUrl = new URL("./", import.meta.url);
await bundleApp({ appUrl, entryPoints: { bin: "src/bin.ts", demo: "src/demo.ts" } });
await finishEntry(new URL("./dist/bin.js", appUrl));

// The command itself: a CommonJS launcher that answers --version and hands everything else to
// dist/bin.js (see src/launcher.ts).
const { version } = JSON.parse(await readFile(new URL("./package.json", appUrl), "utf8"));
await build({
  absWorkingDir: new URL(".", appUrl).pathname,
  entryPoints: ["src/launcher.ts"],
  outfile: "dist/rekey.cjs",
  bundle: true,
  format: "cjs",
  platform: "node",
  target: "node20",
  define: { __REKEY_VERSION__: JSON.stringify(version) },
  external: ["./bin.js"],
  banner: { js: "#!/usr/bin/env node" },
  legalComments: "none",
  logLevel: "warning",
});
const launcher = await readFile(new URL("./dist/rekey.cjs", appUrl), "utf8");
if (!launcher.includes('import("./bin.js")')) {
  throw new Error("dist/rekey.cjs must load dist/bin.js with a dynamic import()");
}
await chmod(new URL("./dist/rekey.cjs", appUrl), 0o755);
