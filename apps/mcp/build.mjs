// Bundles rekey-mcp the way every app is bundled (scripts/bundle-app.mjs): self-contained, lazy
// chunks, `pg` an optional peer. The entry (src/bin.ts) holds only the stdio front and the
// handshake answers, computed here from the real server (src/handshake-data.ts), so a host's
// `initialize` and `tools/list` are answered before the SDK, zod and core load. The HTTP
// transport (and the Hono adapter under it) is a lazy chunk as well.
import { readFile, rm } from "node:fs/promises";
import { build } from "esbuild";
import { bundleApp, finishEntry } from "../../scripts/bundle-app.mjs";

const appUrl = new URL("./", import.meta.url);
const { version } = JSON.parse(await readFile(new URL("package.json", appUrl), "utf8"));

/** Runs src/handshake-data.ts (bundled with its packages left outside) and returns its answers. */
async function precomputedHandshake() {
  const script = new URL(`.handshake-${process.pid}.mjs`, appUrl);
  await build({
    absWorkingDir: new URL(".", appUrl).pathname,
    entryPoints: ["src/handshake-data.ts"],
    outfile: script.pathname,
    bundle: true,
    packages: "external",
    format: "esm",
    platform: "node",
    target: "node20",
    define: { __REKEY_VERSION__: JSON.stringify(version) },
    logLevel: "warning",
  });
  try {
    const { describeHandshake } = await import(script.href);
    return await describeHandshake(version);
  } finally {
    await rm(script, { force: true });
  }
}

const handshake = await precomputedHandshake();
if (!Array.isArray(handshake.toolsList.tools) || handshake.toolsList.tools.length === 0) {
  throw new Error("the server listed no tools: the precomputed handshake would be wrong");
}
await bundleApp({
  appUrl,
  entryPoints: { bin: "src/bin.ts" },
  define: { __REKEY_MCP_HANDSHAKE__: JSON.stringify(handshake) },
});
await finishEntry(new URL("./dist/bin.js", appUrl));
