// Bundles rekey-http the way every app is bundled (scripts/bundle-app.mjs): self-contained,
// lazy chunks, `pg` an optional peer.
import { bundleApp, finishEntry } from "../../scripts/bundle-app.mjs";

const appUrl = new URL("./", import.meta.url);
await bundleApp({ appUrl, entryPoints: { bin: "src/bin.ts" } });
await finishEntry(new URL("./dist/bin.js", appUrl));
