// Bundles the app's own modules into one ESM file for Node 20. Runtime dependencies (hono,
// pino, @rekey/core...) stay external: they are installed beside the package.
// Bundling @rekey/core was tried (2026-11): it now runs (core's lazy undici import survives
// bundling) but needs a createRequire banner for proper-lockfile's CommonJS requires, grows
// the file from ~40 KB to ~1.3 MB, and did not start measurably faster (~350-400 ms to the URL
// line either way on the 2-core dev machine), so it is not worth the extra moving part.
import { readFile } from "node:fs/promises";
import { build } from "esbuild";

const manifest = JSON.parse(await readFile(new URL("./package.json", import.meta.url), "utf8"));

await build({
  entryPoints: ["src/bin.ts"],
  outfile: "dist/bin.js",
  bundle: true,
  platform: "node",
  target: "node20",
  format: "esm",
  sourcemap: true,
  external: Object.keys(manifest.dependencies ?? {}),
  logLevel: "warning",
});
