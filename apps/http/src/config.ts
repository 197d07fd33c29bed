import { readFile } from "node:fs/promises";
import { parseArgs } from "node:util";
import { assertNoPasswordInArgument, RekeyError } from "@rekey/core";
import { parseTokenConfig, type TokenConfig } from "./tokens.js";

/** Everything `bin.ts` needs to start, parsed from argv and the environment. */
export interface HttpConfig {
  host: string;
  port: number;
  tokens: TokenConfig[];
  tls?: { cert: Buffer; key: Buffer } | undefined;
  /** Store spec for `openCredentialStore` (`--store` or REKEY_STORE). */
  storeSpec?: string | undefined;
  /** Profile (`--profile` or REKEY_PROFILE). */
  profile?: string | undefined;
  /** Rotations per minute per token. */
  rotateLimitPerMinute: number;
  logLevel: string;
}

/** `rekey-http --help`. */
export const USAGE = `Usage: rekey-http [options]
       rekey-http hash-token < token.txt     print the SHA-256 of a token for the configuration

Options:
  --host <host>           interface to listen on (default 127.0.0.1; others log a warning without TLS)
  --port <port>           port (default 8787; 0 picks a free one)
  --tokens-file <path>    JSON token list (default: REKEY_HTTP_TOKENS)
  --tls-cert <path>       PEM certificate (with --tls-key: serve HTTPS)
  --tls-key <path>        PEM private key
  --store <spec>          credential store: a directory, file:DIR, memory, or postgres://URL
                          shared by replicas (default: REKEY_STORE; keep a database password
                          in REKEY_STORE or PGPASSWORD, not on the command line)
  --profile <name>        profile (default: REKEY_PROFILE or "default")
  --rotate-limit <n>      rotations per minute per token (default 10)
  --log-level <level>     pino level (default info)
  --help                  show this help
`;

const LOOPBACK = new Set(["127.0.0.1", "::1", "localhost"]);

/** True when `host` only accepts connections from this machine. */
export function isLoopback(host: string): boolean {
  return LOOPBACK.has(host) || host.startsWith("127.");
}

function wholeNumber(name: string, text: string, min: number, max: number): number {
  const value = Number(text);
  if (!/^\d+$/.test(text) || value < min || value > max) {
    throw new RekeyError(
      "CONFIG_INVALID",
      `${name} must be a whole number from ${min} to ${max}, got ${JSON.stringify(text)}`,
    );
  }
  return value;
}

async function readConfigFile(flag: string, path: string): Promise<Buffer> {
  try {
    return await readFile(path);
  } catch (cause) {
    throw new RekeyError("CONFIG_INVALID", `Cannot read ${flag} ${path}`, { cause });
  }
}

/**
 * Parses the command line and environment (passed in: only bin.ts touches `process`).
 * @throws RekeyError CONFIG_INVALID for unknown options, bad values, no tokens, half a TLS pair.
 */
export async function parseHttpConfig(
  argv: string[],
  env: Record<string, string | undefined>,
): Promise<HttpConfig> {
  let values: ReturnType<typeof parse>["values"];
  function parse() {
    return parseArgs({
      args: argv,
      strict: true,
      allowPositionals: false,
      options: {
        host: { type: "string" },
        port: { type: "string" },
        "tokens-file": { type: "string" },
        "tls-cert": { type: "string" },
        "tls-key": { type: "string" },
        store: { type: "string" },
        profile: { type: "string" },
        "rotate-limit": { type: "string" },
        "log-level": { type: "string" },
      },
    });
  }
  try {
    values = parse().values;
  } catch (cause) {
    throw new RekeyError("CONFIG_INVALID", cause instanceof Error ? cause.message : String(cause), {
      hint: "rekey-http --help lists the options.",
    });
  }

  assertNoPasswordInArgument(values.store);
  const tokenText =
    values["tokens-file"] === undefined
      ? env.REKEY_HTTP_TOKENS
      : (await readConfigFile("--tokens-file", values["tokens-file"])).toString("utf8");
  if (tokenText === undefined || tokenText.trim() === "") {
    throw new RekeyError("CONFIG_INVALID", "No bearer tokens configured", {
      hint: "Set REKEY_HTTP_TOKENS or --tokens-file; `rekey-http hash-token` hashes a token.",
    });
  }

  const certPath = values["tls-cert"];
  const keyPath = values["tls-key"];
  if ((certPath === undefined) !== (keyPath === undefined)) {
    throw new RekeyError("CONFIG_INVALID", "--tls-cert and --tls-key go together");
  }

  return {
    host: values.host ?? "127.0.0.1",
    port: values.port === undefined ? 8787 : wholeNumber("--port", values.port, 0, 65_535),
    tokens: parseTokenConfig(tokenText),
    tls:
      certPath === undefined || keyPath === undefined
        ? undefined
        : {
            cert: await readConfigFile("--tls-cert", certPath),
            key: await readConfigFile("--tls-key", keyPath),
          },
    storeSpec: values.store ?? env.REKEY_STORE,
    profile: values.profile ?? env.REKEY_PROFILE,
    rotateLimitPerMinute:
      values["rotate-limit"] === undefined
        ? 10
        : wholeNumber("--rotate-limit", values["rotate-limit"], 1, 100_000),
    logLevel: values["log-level"] ?? "info",
  };
}
