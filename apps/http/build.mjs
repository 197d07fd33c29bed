// Bundles the app's own modules into one ESM file for Node 20. Runtime dependencies (hono,
// pino, @rekey/core...) stay external: they are installed beside the package, and bundling
// core's CommonJS dependencies into ESM would need require shims.
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
