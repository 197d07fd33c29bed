// Bundles rekey-mcp the way every app is bundled (scripts/bundle-app.mjs): self-contained, lazy
// chunks, `pg` an optional peer. The HTTP transport (and the Hono adapter under it) is a lazy
// chunk, so a host that spawns rekey-mcp per session over stdio loads none of it.
import { bundleApp, finishEntry } from "../../scripts/bundle-app.mjs";

const appUrl = new URL("./", import.meta.url);
await bundleApp({ appUrl, entryPoints: { bin: "src/bin.ts" } });
await finishEntry(new URL("./dist/bin.js", appUrl));
