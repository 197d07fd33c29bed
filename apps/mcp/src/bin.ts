#!/usr/bin/env node
// The composition root: the only file that reads argv and the environment, builds the real
// store and Rekey, and listens. Everything else takes its dependencies.
import { readFile } from "node:fs/promises";
import { StdioServerTransport } from "@modelcontextprotocol/sdk/server/stdio.js";
import {
  createRekey,
  openCredentialStore,
  type Rekey,
  type RekeyError,
  redactKeys,
  toRekeyError,
} from "@rekey/core";
import { postgresUrlStores } from "@rekey/store-postgres/url-stores";
import { type McpOptions, parseOptions, USAGE } from "./options.js";
import { createMcpServer } from "./server.js";

import { VERSION as version } from "./version.js";

// stdout carries the protocol in stdio mode: diagnostics go to stderr, always key-free.
function log(line: string): void {
  process.stderr.write(`rekey-mcp: ${redactKeys(line)}\n`);
}

function fail(error: RekeyError): never {
  log(`${error.code}: ${error.message}${error.hint ? `\n  ${error.hint}` : ""}`);
  process.exit(2);
}

async function bearerToken(options: McpOptions): Promise<string | undefined> {
  if (options.bearerTokenFile === undefined) return options.bearerToken;
  const token = (await readFile(options.bearerTokenFile, "utf8")).trim();
  if (token === "") throw new Error(`The bearer token file ${options.bearerTokenFile} is empty`);
  return token;
}

/**
 * A host starts the server without showing its output, so a profile with no key would only
 * surface as failing tools: say at once which command fixes it (stderr, the host's log).
 */
async function warnWhenNoKey(rekey: Rekey, profile: string | undefined): Promise<void> {
  try {
    const status = await rekey.status();
    if (status.hasKey) return;
    const flag = profile === undefined ? "" : ` --profile ${profile}`;
    log(
      `warning: profile "${status.profile}" holds no key, so every tool will fail. Store one with \`rekey login${flag}\` (or \`rekey register${flag}\`) from @rekey/cli, or set REKEY_API_KEY.`,
    );
  } catch {
    // The first tool call reports a store that cannot be read, with its code and hint.
  }
}

async function main(): Promise<void> {
  const env = process.env;
  const options = parseOptions(process.argv.slice(2), env);
  if (options.help) return void process.stdout.write(USAGE);
  if (options.version) return void process.stdout.write(`${version}\n`);

  const store = await openCredentialStore({
    spec: options.store,
    env,
    urlStores: postgresUrlStores,
  });
  const rekey = createRekey({ store, surface: "mcp", profile: options.profile, env });
  await warnWhenNoKey(rekey, options.profile);
  const deps = { rekey, revealKeys: options.revealKeys, log, version };
  if (options.revealKeys) log("REKEY_MCP_REVEAL_KEYS is on: rotate_api_key returns raw keys");

  let stop: () => Promise<void>;
  if (options.transport.kind === "stdio") {
    const server = createMcpServer(deps);
    const transport = new StdioServerTransport();
    stop = () => server.close();
    // The host closing stdin ends the session.
    process.stdin.once("end", () => void shutdown());
    await server.connect(transport);
  } else {
    const token = await bearerToken(options);
    // Only the HTTP mode pays for the HTTP transport (and the Hono adapter under it).
    const { startHttpServer } = await import("./http-server.js");
    const running = await startHttpServer({
      host: options.transport.host,
      port: options.transport.port,
      bearerToken: token,
      createServer: () => createMcpServer(deps),
      log,
    });
    stop = running.close;
    log(`listening on ${running.url}${token === undefined ? "" : " (bearer token required)"}`);
  }

  let stopping = false;
  async function shutdown(): Promise<void> {
    if (stopping) return;
    stopping = true;
    try {
      await stop();
      await rekey.close();
      await store.close();
    } finally {
      process.exit(0);
    }
  }
  process.once("SIGINT", () => void shutdown());
  process.once("SIGTERM", () => void shutdown());
}

main().catch((error: unknown) => fail(toRekeyError(error)));
