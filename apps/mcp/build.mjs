// Bundles the binary: one ESM entry plus a lazy chunk for the HTTP transport, so a host that
// spawns rekey-mcp per session reads and resolves as few files as possible. `@rekey/core` is
// bundled too. undici stays a package (a dependency of @rekey/mcp): core imports it lazily, and
// esbuild turns a split dynamic import of CommonJS into a default-only namespace
// (`undici.Pool is not a constructor`); left external, Node's own CJS interop names the exports.
// pg stays a package too (a dependency): only a postgres:// store loads it, from a lazy chunk,
// and bundling it would need a stand-in for its optional native addon.
import { readFile, rm } from "node:fs/promises";
import { build } from "esbuild";

const { version } = JSON.parse(await readFile(new URL("./package.json", import.meta.url), "utf8"));
await rm(new URL("./dist", import.meta.url), { recursive: true, force: true });

await build({
  entryPoints: { bin: "src/bin.ts" },
  outdir: "dist",
  bundle: true,
  splitting: true,
  format: "esm",
  platform: "node",
  target: "node20",
  minifySyntax: true,
  sourcemap: "linked",
  legalComments: "none",
  define: { REKEY_MCP_VERSION: JSON.stringify(version) },
  // Bundled CommonJS (ajv, hono's node adapter) calls require(): give it one.
  banner: {
    js: "import { createRequire as __rekeyCreateRequire } from 'node:module'; const require = __rekeyCreateRequire(import.meta.url);",
  },
  chunkNames: "chunks/[name]-[hash]",
  external: ["undici", "pg"],
  logLevel: "warning",
});
