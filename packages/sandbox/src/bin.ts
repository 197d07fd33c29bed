#!/usr/bin/env node
import { readFileSync } from "node:fs";
import { isQuiet, parseCliArgs, USAGE } from "./cli-args.js";
import { startSandbox } from "./server.js";

const args = process.argv.slice(2);
if (args.includes("--help") || args.includes("-h")) {
  process.stdout.write(`${USAGE}\n`);
  process.exit(0);
}
if (args.length === 1 && (args[0] === "--version" || args[0] === "-v")) {
  const manifest = new URL("../package.json", import.meta.url);
  const { version } = JSON.parse(readFileSync(manifest, "utf8")) as { version: string };
  process.stdout.write(`${version}\n`);
  process.exit(0);
}
let options: ReturnType<typeof parseCliArgs>;
try {
  options = parseCliArgs(args);
} catch (error) {
  process.stderr.write(`rekey-sandbox: ${(error as Error).message}\n${USAGE}\n`);
  process.exit(2);
}

const logger = isQuiet(args)
  ? undefined
  : (line: string) => process.stderr.write(`rekey-sandbox: ${line}\n`);

try {
  const sandbox = await startSandbox({ ...options, ...(logger ? { logger } : {}) });
  process.stdout.write(`rekey-sandbox listening on ${sandbox.url}\n`);
  if (options.dataFile === undefined) {
    process.stderr.write(
      "rekey-sandbox: warning: no --data FILE: accounts and keys live in memory, and a restart forgets every key\n",
    );
  }
  const stop = () => {
    sandbox.close().then(
      () => process.exit(0),
      () => process.exit(1),
    );
  };
  process.once("SIGINT", stop);
  process.once("SIGTERM", stop);
} catch (error) {
  process.stderr.write(`rekey-sandbox: could not start: ${(error as Error).message}\n`);
  process.exit(1);
}
