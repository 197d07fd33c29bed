import { execFileSync } from "node:child_process";
import { fileURLToPath } from "node:url";

// The binary tests run dist/rekey.cjs: build it from the current source first, once per run.
export default function setup(): void {
  execFileSync(process.execPath, ["build.mjs"], {
    cwd: fileURLToPath(new URL(".", import.meta.url)),
    stdio: "inherit",
  });
}
