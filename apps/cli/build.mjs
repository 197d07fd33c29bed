// Bundles the CLI for node20. `splitting` keeps every `await import(...)` a lazy chunk, so
// `rekey --version` loads only the entry chunk (commander), not core, zod or undici.
import { chmod, readFile, rm, writeFile } from "node:fs/promises";
import { build } from "esbuild";

const { version } = JSON.parse(await readFile(new URL("./package.json", import.meta.url), "utf8"));

const BANNER =
  'import { createRequire as __rekeyCreateRequire } from "node:module"; const require = __rekeyCreateRequire(import.meta.url);';

await rm(new URL("./dist", import.meta.url), { recursive: true, force: true });
const result = await build({
  entryPoints: { bin: "src/bin.ts", demo: "src/demo.ts" },
  outdir: "dist",
  bundle: true,
  splitting: true,
  format: "esm",
  platform: "node",
  target: "node20",
  chunkNames: "chunks/[name]-[hash]",
  // Core and the sandbox stay packages (resolved at runtime, their own dependencies with
  // them): esbuild turns a split dynamic import of CommonJS (core's lazy undici) into a
  // default-only namespace. zod is shared with core rather than loaded twice.
  external: ["@rekey/core", "@rekey/sandbox", "zod"],
  define: { __REKEY_VERSION__: JSON.stringify(version) },
  // Bundled CommonJS dependencies call require() for node built-ins; ESM has none.
  banner: { js: BANNER },
  metafile: true,
  legalComments: "none",
  logLevel: "warning",
});
await writeFile(new URL("./dist/meta.json", import.meta.url), JSON.stringify(result.metafile));

// The entry needs no require(): drop the shim there, one module less on `rekey --version`.
const binUrl = new URL("./dist/bin.js", import.meta.url);
const bin = await readFile(binUrl, "utf8");
const withoutShim = bin.replace(`${BANNER}\n`, "");
if (/\brequire\(/.test(withoutShim)) throw new Error("dist/bin.js calls require(): keep the shim");
await writeFile(binUrl, withoutShim);
await chmod(new URL("./dist/bin.js", import.meta.url), 0o755);
