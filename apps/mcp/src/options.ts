import { assertNoPasswordInArgument, isLoopbackHost, RekeyError } from "@rekey/core";
import { Command, CommanderError } from "commander";

/** How the binary was asked to run, parsed from argv and the environment. */
export interface McpOptions {
  /** stdio (the default), or Streamable HTTP on host:port. */
  transport: { kind: "stdio" } | { kind: "http"; host: string; port: number };
  profile?: string | undefined;
  /** A stored principal to act as ("agent:7"; `--as` or REKEY_AS). */
  actAs?: string | undefined;
  /** Store spec for `openCredentialStore` ("memory", "file:DIR", a path or a postgres:// URL). */
  store?: string | undefined;
  revealKeys: boolean;
  /** A file holding the bearer token HTTP clients must send. */
  bearerTokenFile?: string | undefined;
  /** The bearer token itself, from REKEY_MCP_BEARER_TOKEN. */
  bearerToken?: string | undefined;
  /** PEM certificate and key files for HTTPS (`--tls-cert`, `--tls-key`). */
  tls?: { certFile: string; keyFile: string } | undefined;
  /** Connections served at once in HTTP mode. */
  maxConnections?: number | undefined;
  help: boolean;
  version: boolean;
}

/**
 * The command line, declared with commander like every rekey binary's, so help and errors
 * read alike. Help and version are plain flags here: bin.ts prints {@link USAGE} or the version.
 */
function createOptionsCommand(): Command {
  return new Command("rekey-mcp")
    .description(
      "Serves the rekey MCP tools (rotate_api_key, get_key_status, list_agents, whoami).\nSpeaks MCP over stdio unless --http is given. Logs go to stderr.",
    )
    .helpOption(false)
    .option("--http <port>", "serve Streamable HTTP on PORT (path /mcp) instead of stdio")
    .option(
      "--host <host>",
      "address for --http (default 127.0.0.1); any non-loopback address requires a bearer token of your own",
    )
    .option(
      "--bearer-token-file <file>",
      'the token clients must send as "Authorization: Bearer <token>"; without it (or REKEY_MCP_BEARER_TOKEN) --http makes one, writes it to a new 0600 file and logs where',
    )
    .option("--tls-cert <file>", "PEM certificate (with --tls-key: serve HTTPS)")
    .option("--tls-key <file>", "PEM private key")
    .option("--max-connections <n>", "connections served at once in --http mode (default 128)")
    .option("--profile <name>", 'credential profile (env REKEY_PROFILE, default "default")')
    .option(
      "--as <principal>",
      "act as a principal stored on the profile's faucet, e.g. agent:7 (env REKEY_AS): an agent created with `rekey agents create`",
    )
    .option(
      "--store <spec>",
      "credential store: a directory, file:DIR, memory or postgres://URL (env REKEY_STORE; keep a database password out of the arguments)",
    )
    .option("-h, --help", "show this help")
    .option("-v, --version", "show the version")
    .exitOverride()
    .configureOutput({ writeOut: () => {}, writeErr: () => {}, outputError: () => {} });
}

const ENVIRONMENT = `
Environment:
  REKEY_HOME                store directory (default $XDG_CONFIG_HOME/rekey or ~/.config/rekey)
  REKEY_API_URL             faucet URL for a new profile
  REKEY_MCP_BEARER_TOKEN    bearer token for --http (instead of --bearer-token-file)
  REKEY_MCP_REVEAL_KEYS=1   also return the raw new key from rotate_api_key (unsafe)
`;

/** `rekey-mcp --help`: commander's help, then the environment variables. */
export const USAGE = `${createOptionsCommand().helpInformation()}${ENVIRONMENT}`;

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
  } else if (
    values.host !== undefined ||
    bearerTokenFile !== undefined ||
    values["tls-cert"] !== undefined ||
    values["tls-key"] !== undefined ||
    values["max-connections"] !== undefined
  ) {
    throw invalid(
      "--host, --bearer-token-file, --tls-cert, --tls-key and --max-connections only apply with --http PORT",
    );
  }
  const certFile = nonEmpty(values["tls-cert"]);
  const keyFile = nonEmpty(values["tls-key"]);
  if ((certFile === undefined) !== (keyFile === undefined)) {
    throw invalid("--tls-cert and --tls-key go together");
  }
  const maxConnections = values["max-connections"];
  if (
    maxConnections !== undefined &&
    (!/^[1-9]\d{0,5}$/.test(maxConnections) || Number(maxConnections) > 100_000)
  ) {
    throw invalid(
      `--max-connections needs a number from 1 to 100000, got ${JSON.stringify(maxConnections)}`,
    );
  }
  return {
    transport,
    profile: nonEmpty(values.profile) ?? nonEmpty(env.REKEY_PROFILE),
    actAs: nonEmpty(values.as) ?? nonEmpty(env.REKEY_AS),
    store: nonEmpty(values.store) ?? nonEmpty(env.REKEY_STORE),
    revealKeys: env.REKEY_MCP_REVEAL_KEYS === "1" || env.REKEY_MCP_REVEAL_KEYS === "true",
    bearerTokenFile,
    bearerToken,
    tls: certFile === undefined || keyFile === undefined ? undefined : { certFile, keyFile },
    maxConnections: maxConnections === undefined ? undefined : Number(maxConnections),
    help: values.help === true,
    version: values.version === true,
  };
}

interface ParsedFlags {
  http?: string;
  host?: string;
  bearerTokenFile?: string;
  tlsCert?: string;
  tlsKey?: string;
  maxConnections?: string;
  profile?: string;
  as?: string;
  store?: string;
  help?: boolean;
  version?: boolean;
}

function parse(argv: string[]): {
  values: ParsedFlags & {
    "bearer-token-file"?: string;
    "tls-cert"?: string;
    "tls-key"?: string;
    "max-connections"?: string;
  };
} {
  try {
    const flags = createOptionsCommand().parse(argv, { from: "user" }).opts<ParsedFlags>();
    return {
      values: {
        ...flags,
        "bearer-token-file": flags.bearerTokenFile,
        "tls-cert": flags.tlsCert,
        "tls-key": flags.tlsKey,
        "max-connections": flags.maxConnections,
      },
    };
  } catch (error) {
    if (error instanceof CommanderError) throw new Error(error.message.replace(/^error: /, ""));
    throw error;
  }
}
