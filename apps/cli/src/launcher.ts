// The installed `rekey` command (dist/rekey.cjs). It is CommonJS on purpose: node starts a
// CommonJS file as fast as `node -e 0`, while any ES module entry costs about 20% more, and that
// is all `rekey --version` should cost. Everything else is the ES module bundle, dist/bin.js.
import { VERSION } from "./version.js";

const args = process.argv.slice(2);
if (args.length === 1 && (args[0] === "--version" || args[0] === "-v")) {
  process.stdout.write(`${VERSION}\n`);
} else {
  void import("./bin.js");
}
