/**
 * Runs every bench/src/*.bench.mjs in turn (alphabetical). An optional argument keeps only
 * the files whose name contains it: `pnpm --filter @rekey/bench bench sandbox`.
 * A bench file default-exports an async function; a file without one runs on import.
 */
import { readdirSync } from "node:fs";
import { dirname, join } from "node:path";
import { fileURLToPath, pathToFileURL } from "node:url";

const directory = dirname(fileURLToPath(import.meta.url));
const filter = process.argv[2] ?? "";
const files = readdirSync(directory)
  .filter((file) => file.endsWith(".bench.mjs") && file.includes(filter))
  .sort();

if (files.length === 0) {
  console.error(`no benchmark matches "${filter}" in ${directory}`);
  process.exit(1);
}

let failed = 0;
for (const file of files) {
  console.log(`\n== ${file}`);
  const started = Date.now();
  try {
    const benchmark = await import(pathToFileURL(join(directory, file)).href);
    if (typeof benchmark.default === "function") await benchmark.default();
    console.log(`== ${file} done in ${((Date.now() - started) / 1000).toFixed(1)}s`);
  } catch (error) {
    failed += 1;
    console.error(`== ${file} failed: ${error instanceof Error ? error.stack : error}`);
  }
}
process.exit(failed === 0 ? 0 : 1);
