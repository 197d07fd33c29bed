import { parseArgs } from "node:util";
import { assertNoPasswordInArgument, RekeyError } from "@rekey/core";

/** How the binary was asked to run, parsed from argv and the environment. */
export interface McpOptions {
  /** stdio (the default), or Streamable HTTP on host:port. */
  transport: { kind: "stdio" } | { kind: "http"; host: string; port: number };
  profile?: string | undefined;
  /** Store spec for `openCredentialStore` ("memory", "file:DIR", a path or a postgres:// URL). */
  store?: string | undefined;
  revealKeys: boolean;
  /** A file holding the bearer token HTTP clients must send. */
  bearerTokenFile?: string | undefined;
  /** The bearer token itself, from REKEY_MCP_BEARER_TOKEN. */
  bearerToken?: string | undefined;
  help: boolean;
  version: boolean;
}

export const USAGE = `Usage: rekey-mcp [options]

Serves the rekey MCP tools (rotate_api_key, get_key_status, list_agents, whoami).
Speaks MCP over stdio unless --http is given. Logs go to stderr.

Options:
  --http PORT               serve Streamable HTTP on PORT (path /mcp) instead of stdio
  --host HOST               address for --http (default 127.0.0.1); any non-loopback
                            address requires a bearer token
  --bearer-token-file FILE  require "Authorization: Bearer <token>" with the token in FILE
  --profile NAME            credential profile (env REKEY_PROFILE, default "default")
  --store SPEC              credential store: a directory, file:DIR, memory or postgres://URL
                            (env REKEY_STORE; keep a database password out of the arguments)
  -h, --help                show this help
  -v, --version             show the version

Environment:
  REKEY_HOME                store directory (default $XDG_CONFIG_HOME/rekey or ~/.config/rekey)
  REKEY_API_URL             faucet URL for a new profile
  REKEY_MCP_BEARER_TOKEN    bearer token for --http (instead of --bearer-token-file)
  REKEY_MCP_REVEAL_KEYS=1   also return the raw new key from rotate_api_key (unsafe)
`;

const LOOPBACK_NAMES = new Set(["localhost", "::1", "[::1]"]);

/** True for addresses only this machine can reach. */
export function isLoopbackHost(host: string): boolean {
  return LOOPBACK_NAMES.has(host.toLowerCase()) || /^127(\.\d{1,3}){3}$/.test(host);
}

function invalid(message: string, hint?: string): RekeyError {
  return new RekeyError("CONFIG_INVALID", message, { hint: hint ?? "Run rekey-mcp --help." });
}

function nonEmpty(value: string | undefined): string | undefined {
  return value === undefined || value.trim() === "" ? undefined : value;
}

/**
 * Parses argv (without node and the script) and the environment.
 * @throws RekeyError CONFIG_INVALID for unknown options, a bad port, or a non-loopback host
 *   without a bearer token.
 */
export function parseOptions(argv: string[], env: Record<string, string | undefined>): McpOptions {
  let values: ReturnType<typeof parse>["values"];
  try {
    values = parse(argv).values;
  } catch (error) {
    throw invalid(error instanceof Error ? error.message : String(error));
  }
  assertNoPasswordInArgument(values.store);
  const host = values.host ?? "127.0.0.1";
  const bearerTokenFile = nonEmpty(values["bearer-token-file"]);
  const bearerToken = nonEmpty(env.REKEY_MCP_BEARER_TOKEN);
  let transport: McpOptions["transport"] = { kind: "stdio" };
  if (values.http !== undefined) {
    if (!/^\d{1,5}$/.test(values.http) || Number(values.http) > 65_535) {
      throw invalid(
        `--http needs a port number from 0 to 65535, got ${JSON.stringify(values.http)}`,
      );
    }
    transport = { kind: "http", host, port: Number(values.http) };
    if (!isLoopbackHost(host) && bearerTokenFile === undefined && bearerToken === undefined) {
      throw invalid(
        `Refusing to serve on ${host} without a bearer token: anyone who can reach it could rotate keys.`,
        "Pass --bearer-token-file FILE or set REKEY_MCP_BEARER_TOKEN, or keep the default host 127.0.0.1.",
      );
    }
  } else if (values.host !== undefined || bearerTokenFile !== undefined) {
    throw invalid("--host and --bearer-token-file only apply with --http PORT");
  }
  return {
    transport,
    profile: nonEmpty(values.profile) ?? nonEmpty(env.REKEY_PROFILE),
    store: nonEmpty(values.store) ?? nonEmpty(env.REKEY_STORE),
    revealKeys: env.REKEY_MCP_REVEAL_KEYS === "1" || env.REKEY_MCP_REVEAL_KEYS === "true",
    bearerTokenFile,
    bearerToken,
    help: values.help === true,
    version: values.version === true,
  };
}

function parse(argv: string[]) {
  return parseArgs({
    args: argv,
    strict: true,
    allowPositionals: false,
    options: {
      http: { type: "string" },
      host: { type: "string" },
      "bearer-token-file": { type: "string" },
      profile: { type: "string" },
      store: { type: "string" },
      help: { type: "boolean", short: "h" },
      version: { type: "boolean", short: "v" },
    },
  });
}
