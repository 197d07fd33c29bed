// The composition root: the only file that reads argv and the environment, builds the real
// store and Rekey, and listens. Everything else takes its dependencies. bin.ts loads it, after
// the stdio front (stdio-front.ts) has answered a host's handshake when it could.
import { randomBytes } from "node:crypto";
import { mkdtemp, readFile, rm, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { StdioServerTransport } from "@modelcontextprotocol/sdk/server/stdio.js";
import { deserializeMessage } from "@modelcontextprotocol/sdk/shared/stdio.js";
import {
  assertBearerTokenStrength,
  createRekey,
  isLoopbackHost,
  isRekeyError,
  openCredentialStore,
  type Rekey,
  type RekeyError,
  readSecretFile,
  redactKeys,
  startDeliveryFinisher,
  toRekeyError,
} from "@rekey/core";
import { postgresUrlStores } from "@rekey/store-postgres/url-stores";
import { countingAnswers } from "./answers-before-end.js";
import { type McpOptions, parseOptions, USAGE } from "./options.js";
import { createMcpServer } from "./server.js";
import type { StdioFront } from "./stdio-front.js";
import { unopenedStore } from "./unopened-store.js";

import { VERSION as version } from "./version.js";

// stdout carries the protocol in stdio mode: diagnostics go to stderr, always key-free.
function log(line: string): void {
  process.stderr.write(`rekey-mcp: ${redactKeys(line)}\n`);
}

function fail(error: RekeyError): never {
  log(`${error.code}: ${error.message}${error.hint ? `\n  ${error.hint}` : ""}`);
  process.exit(2);
}

/**
 * The token from --bearer-token-file or REKEY_MCP_BEARER_TOKEN. It is all that keeps other
 * users of the machine from rotating (or, with reveal, reading) keys: a file they can read, or
 * a token short enough to guess, is refused at start.
 */
async function configuredToken(options: McpOptions): Promise<string | undefined> {
  if (options.bearerTokenFile === undefined) {
    return options.bearerToken === undefined
      ? undefined
      : assertBearerTokenStrength(options.bearerToken, "REKEY_MCP_BEARER_TOKEN");
  }
  const token = await readSecretFile("--bearer-token-file", options.bearerTokenFile);
  return assertBearerTokenStrength(token, `--bearer-token-file ${options.bearerTokenFile}`);
}

/**
 * A fresh token in a new 0700 directory (the user's runtime directory when there is one), as
 * Jupyter does: the clients of this user can read it, other users cannot. Removed at shutdown.
 */
async function generatedToken(env: NodeJS.ProcessEnv): Promise<{ token: string; file: string }> {
  const dir = await mkdtemp(join(env.XDG_RUNTIME_DIR || tmpdir(), "rekey-mcp-"));
  const file = join(dir, "bearer-token");
  const token = randomBytes(32).toString("base64url");
  await writeFile(file, `${token}\n`, { mode: 0o600, flag: "wx" });
  return { token, file };
}

/**
 * A host starts the server without showing its output, so a profile with no key would only
 * surface as failing tools: say at once which command fixes it (stderr, the host's log).
 */
async function warnWhenNoKey(rekey: Rekey, profile: string | undefined): Promise<void> {
  const flag = profile === undefined ? "" : ` --profile ${profile}`;
  const warn = (name: string) =>
    log(
      `warning: profile "${name}" holds no key, so every tool will fail. Store one with \`rekey login${flag}\` (or \`rekey register${flag}\`) from @rekey/cli, or set REKEY_API_KEY.`,
    );
  try {
    const status = await rekey.status();
    if (!status.hasKey) warn(status.profile);
  } catch (error) {
    // A profile that does not exist yet holds no key either; any other error (a store that
    // cannot be read) is reported by the first tool call, with its code and hint.
    if (isRekeyError(error, "NOT_FOUND")) warn(rekey.profileName);
  }
}

async function main(front: StdioFront | undefined): Promise<void> {
  const env = process.env;
  const options = parseOptions(process.argv.slice(2), env);
  if (options.help) return void process.stdout.write(USAGE);
  if (options.version) return void process.stdout.write(`${version}\n`);

  const store = await openCredentialStore({
    spec: options.store,
    env,
    urlStores: postgresUrlStores,
  }).catch((error: unknown) => {
    // Over stdio a host has seen (or is about to see) the tools: answer each call with why
    // the store did not open rather than end the session. Over HTTP, fail at start.
    if (options.transport.kind !== "stdio") throw error;
    const refused = toRekeyError(error);
    log(`${refused.code}: ${refused.message}${refused.hint ? `\n  ${refused.hint}` : ""}`);
    log("every tool call will fail with this error until rekey-mcp is restarted");
    return unopenedStore(refused, "not opened");
  });
  const storeOpened = store.kind !== "unopened";
  const rekey = createRekey({
    store,
    surface: "mcp",
    profile: options.profile,
    ...(options.actAs === undefined ? {} : { actAs: options.actAs }),
    env,
    delivery: {
      openStore: (location) =>
        openCredentialStore({ spec: location, env, urlStores: postgresUrlStores }),
    },
  });
  if (storeOpened) await warnWhenNoKey(rekey, options.profile);
  // Deliveries left by killed processes, and those of rotations made elsewhere.
  const stopDeliveries = storeOpened
    ? startDeliveryFinisher({
        finish: () => rekey.finishDeliveries(),
        watch: (listener) => store.watch(listener),
        onError: (error) =>
          log(`finishing deliveries failed (${toRekeyError(error).code}); will retry`),
      })
    : () => Promise.resolve();
  const deps = { rekey, revealKeys: options.revealKeys, log, version };
  if (options.revealKeys) log("REKEY_MCP_REVEAL_KEYS is on: rotate_api_key returns raw keys");

  let stop: () => Promise<void>;
  if (options.transport.kind === "stdio") {
    const server = createMcpServer(deps);
    stop = () => server.close();
    // The host closing stdin ends the session, once what it sent before closing is answered
    // (through the front, stdin may have ended while the server loaded).
    if (front === undefined) {
      const counted = countingAnswers(new StdioServerTransport());
      process.stdin.once("end", () => counted.whenAnswered(() => void shutdown()));
      await server.connect(counted.transport);
    } else {
      front.onInputEnd(() => void shutdown());
      await server.connect(front.handOver(deserializeMessage));
    }
  } else {
    const configured = await configuredToken(options);
    const generated = configured === undefined ? await generatedToken(env) : undefined;
    const tls = options.tls && {
      cert: await readFile(options.tls.certFile),
      key: await readFile(options.tls.keyFile),
    };
    if (!isLoopbackHost(options.transport.host) && tls === undefined) {
      log(
        `warning: serving ${options.transport.host} without TLS: the bearer token and any revealed key cross the network in clear text (--tls-cert, --tls-key)`,
      );
    }
    // Only the HTTP mode pays for the HTTP transport (and the Hono adapter under it).
    const { startHttpServer } = await import("./http-server.js");
    const running = await startHttpServer({
      host: options.transport.host,
      port: options.transport.port,
      bearerToken: configured ?? generated?.token ?? "",
      tls,
      limits:
        options.maxConnections === undefined ? {} : { maxConnections: options.maxConnections },
      createServer: () => createMcpServer(deps),
      log,
    });
    stop = async () => {
      await running.close();
      if (generated !== undefined)
        await rm(join(generated.file, ".."), { recursive: true, force: true });
    };
    if (generated !== undefined) log(`bearer token in ${generated.file}`);
    log(`listening on ${running.url} (bearer token required)`);
  }

  let stopping = false;
  async function shutdown(): Promise<void> {
    if (stopping) return;
    stopping = true;
    try {
      await stop();
      await stopDeliveries();
      await rekey.close();
      await store.close();
    } finally {
      process.exit(0);
    }
  }
  process.once("SIGINT", () => void shutdown());
  process.once("SIGTERM", () => void shutdown());
}

/** Runs rekey-mcp; takes over the stdio session from `front` when there is one. */
export function run(front?: StdioFront): void {
  main(front).catch((error: unknown) => fail(toRekeyError(error)));
}
