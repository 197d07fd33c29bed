#!/usr/bin/env node
import { isQuiet, parseCliArgs, USAGE } from "./cli-args.js";
import { startSandbox } from "./server.js";

const args = process.argv.slice(2);
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
