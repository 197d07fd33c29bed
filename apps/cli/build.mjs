// Bundles the CLI for node20 into dist/, with every dependency inside (core, the sandbox, zod,
// undici, commander, ...): the installed CLI needs no other package at runtime. `splitting`
// keeps every `await import(...)` a lazy chunk, so `rekey --version` loads only the entry
// chunk, `--help` adds commander, and core, zod and undici load only when a command runs.
// Core's lazy `import("undici")` arrives here as a namespace holding only `default` (a split
// dynamic import of CommonJS); core's transport accepts that shape.
import { chmod, readFile, rm, writeFile } from "node:fs/promises";
import { isBuiltin } from "node:module";
import { build } from "esbuild";

const { version } = JSON.parse(await readFile(new URL("./package.json", import.meta.url), "utf8"));

const BANNER =
  'import { createRequire as __rekeyCreateRequire } from "node:module"; const require = __rekeyCreateRequire(import.meta.url);';

// pg requires its optional native binding (pg-native, a compiled addon) only when a program
// reads `pg.native`, which rekey never does: a stub stands in, so the bundle stays whole.
const withoutPgNative = {
  name: "without-pg-native",
  setup(builder) {
    builder.onResolve({ filter: /^pg-native$/ }, () => ({ path: "pg-native", namespace: "stub" }));
    builder.onLoad({ filter: /.*/, namespace: "stub" }, () => ({
      contents: 'throw new Error("pg-native is not part of the rekey CLI");',
      loader: "js",
    }));
  },
};

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
  define: { __REKEY_VERSION__: JSON.stringify(version) },
  // Bundled CommonJS dependencies call require() for node built-ins; ESM has none.
  banner: { js: BANNER },
  metafile: true,
  legalComments: "none",
  logLevel: "warning",
  plugins: [withoutPgNative],
});
await writeFile(new URL("./dist/meta.json", import.meta.url), JSON.stringify(result.metafile));

// Self-contained: a chunk may import node built-ins only, never a package left outside
// (`node:sqlite` is newer than node 20: undici requires it only for a cache store we never use).
const leftOutside = Object.values(result.metafile.outputs)
  .flatMap((output) => output.imports)
  .filter((entry) => entry.external && !entry.path.startsWith("node:") && !isBuiltin(entry.path));
if (leftOutside.length > 0) {
  throw new Error(
    `dist/ imports packages at runtime: ${leftOutside.map((e) => e.path).join(", ")}`,
  );
}

// The entry needs no require(): drop the shim there, one module less on `rekey --version`.
const binUrl = new URL("./dist/bin.js", import.meta.url);
const bin = await readFile(binUrl, "utf8");
const withoutShim = bin.replace(`${BANNER}\n`, "");
if (/\brequire\(/.test(withoutShim)) throw new Error("dist/bin.js calls require(): keep the shim");
await writeFile(binUrl, withoutShim);
await chmod(new URL("./dist/bin.js", import.meta.url), 0o755);

// The command itself: a CommonJS launcher that answers --version and hands everything else to
// dist/bin.js (see src/launcher.ts).
await build({
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
const launcher = await readFile(new URL("./dist/rekey.cjs", import.meta.url), "utf8");
if (!launcher.includes('import("./bin.js")')) {
  throw new Error("dist/rekey.cjs must load dist/bin.js with a dynamic import()");
}
await chmod(new URL("./dist/rekey.cjs", import.meta.url), 0o755);
