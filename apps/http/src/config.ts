import { readFile } from "node:fs/promises";
import {
  assertNoPasswordInArgument,
  DEFAULT_SERVER_LIMITS,
  isLoopbackHost,
  RekeyError,
  readSecretFile,
  signWebhook,
} from "@rekey/core";
import { Command, CommanderError } from "commander";
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
  /** A stored principal to act as ("agent:7"; `--as` or REKEY_AS). */
  actAs?: string | undefined;
  /** Rotations per minute per token. */
  rotateLimitPerMinute: number;
  /** Connections served at once (see core's `ServerLimits`). */
  maxConnections: number;
  logLevel: string;
  /** Serve the web console at /ui (`--ui`). */
  ui: boolean;
  /** Run due rotations in the background (`--scheduler`; see scheduler.ts). */
  scheduler?: SchedulerConfig | undefined;
}

/** `--scheduler` and its notification webhook. */
export interface SchedulerConfig {
  intervalMs: number;
  /** A notification webhook for schedule events, with its signing secret. */
  notify?: { url: string; secret: string } | undefined;
}

/**
 * The command line, declared with commander like every rekey binary's, so help and errors
 * read alike. `--help`, `--version`, `hash-token` and `openapi` are answered by bin.ts first.
 */
function createOptionsCommand(): Command {
  return new Command("rekey-http")
    .usage(
      "[options]\n       rekey-http hash-token < token.txt   print the SHA-256 of a token for the configuration\n       rekey-http openapi                  print the OpenAPI 3.1 document it serves",
    )
    .helpOption(false)
    .option(
      "--host <host>",
      "interface to listen on (default 127.0.0.1; others log a warning without TLS)",
    )
    .option("--port <port>", "port (default 8787; 0 picks a free one)")
    .option("--tokens-file <path>", "JSON token list (default: REKEY_HTTP_TOKENS)")
    .option("--tls-cert <path>", "PEM certificate (with --tls-key: serve HTTPS)")
    .option("--tls-key <path>", "PEM private key")
    .option(
      "--store <spec>",
      "credential store: a directory, file:DIR, memory, or postgres://URL shared by replicas (default: REKEY_STORE; keep a database password in REKEY_STORE or PGPASSWORD, not on the command line)",
    )
    .option("--profile <name>", 'profile (default: REKEY_PROFILE or "default")')
    .option(
      "--as <principal>",
      "act as a principal stored on the profile's faucet, e.g. agent:7 (default: REKEY_AS)",
    )
    .option("--rotate-limit <n>", "rotations per minute per token (default 10)")
    .option(
      "--max-connections <n>",
      "connections served at once (default 128; keep well below ulimit -n, the rest are the store's)",
    )
    .option("--log-level <level>", "pino level (default info)")
    .option(
      "--ui",
      "serve the web console at /ui and print a one-time login link on stderr (sign in there with it or a bearer token)",
    )
    .option(
      "--scheduler",
      "rotate keys whose rotation policy says they are due (one replica on a shared store leads)",
    )
    .option("--scheduler-interval <seconds>", "how often the scheduler looks (default 60)")
    .option("--notify-url <url>", "POST schedule events here, signed (https, or http on loopback)")
    .option("--notify-secret-file <path>", "the notification webhook's signing secret")
    .option("-h, --help", "show this help")
    .option("-v, --version", "show the version")
    .exitOverride()
    .configureOutput({ writeOut: () => {}, writeErr: () => {}, outputError: () => {} });
}

/** `rekey-http --help`. */
export const USAGE = createOptionsCommand().helpInformation();

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
  let values: {
    host?: string;
    port?: string;
    "tokens-file"?: string;
    "tls-cert"?: string;
    "tls-key"?: string;
    store?: string;
    profile?: string;
    as?: string;
    "rotate-limit"?: string;
    "max-connections"?: string;
    "log-level"?: string;
    scheduler?: boolean;
    "scheduler-interval"?: string;
    "notify-url"?: string;
    "notify-secret-file"?: string;
    ui?: boolean;
  };
  try {
    const flags = createOptionsCommand()
      .parse(argv, { from: "user" })
      .opts<Record<string, string | undefined>>();
    values = {
      host: flags.host,
      port: flags.port,
      "tokens-file": flags.tokensFile,
      "tls-cert": flags.tlsCert,
      "tls-key": flags.tlsKey,
      store: flags.store,
      profile: flags.profile,
      as: flags.as,
      "rotate-limit": flags.rotateLimit,
      "max-connections": flags.maxConnections,
      "log-level": flags.logLevel,
      scheduler: flags.scheduler !== undefined,
      "scheduler-interval": flags.schedulerInterval,
      "notify-url": flags.notifyUrl,
      "notify-secret-file": flags.notifySecretFile,
      ui: flags.ui !== undefined,
    };
  } catch (cause) {
    const message =
      cause instanceof CommanderError
        ? cause.message.replace(/^error: /, "")
        : cause instanceof Error
          ? cause.message
          : String(cause);
    throw new RekeyError("CONFIG_INVALID", message, {
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
    actAs: values.as ?? (env.REKEY_AS || undefined),
    rotateLimitPerMinute:
      values["rotate-limit"] === undefined
        ? 10
        : wholeNumber("--rotate-limit", values["rotate-limit"], 1, 100_000),
    maxConnections:
      values["max-connections"] === undefined
        ? DEFAULT_SERVER_LIMITS.maxConnections
        : wholeNumber("--max-connections", values["max-connections"], 1, 100_000),
    logLevel: values["log-level"] ?? "info",
    scheduler: await parseSchedulerConfig(values),
    ui: values.ui === true,
  };
}

async function parseSchedulerConfig(values: {
  scheduler?: boolean;
  "scheduler-interval"?: string;
  "notify-url"?: string;
  "notify-secret-file"?: string;
}): Promise<SchedulerConfig | undefined> {
  const url = values["notify-url"];
  const secretFile = values["notify-secret-file"];
  if (!values.scheduler) {
    if (values["scheduler-interval"] !== undefined || url !== undefined) {
      throw new RekeyError(
        "CONFIG_INVALID",
        "--scheduler-interval and --notify-url need --scheduler",
      );
    }
    return undefined;
  }
  if ((url === undefined) !== (secretFile === undefined)) {
    throw new RekeyError("CONFIG_INVALID", "--notify-url and --notify-secret-file go together");
  }
  const interval = values["scheduler-interval"];
  return {
    intervalMs:
      interval === undefined
        ? 60_000
        : wholeNumber("--scheduler-interval", interval, 1, 3600) * 1000,
    notify:
      url === undefined || secretFile === undefined
        ? undefined
        : {
            url: notifyUrl(url),
            secret: notifySecret(await readSecretFile("--notify-secret-file", secretFile)),
          },
  };
}

/** A secret core's webhook signer accepts (16 bytes or more), refused at start, not at the first event. */
function notifySecret(secret: string): string {
  signWebhook({ secret, body: "", timestamp: 0 });
  return secret;
}

/** Events name keys by fingerprint only, but still go only over TLS or to this machine. */
function notifyUrl(text: string): string {
  let url: URL;
  try {
    url = new URL(text);
  } catch {
    throw new RekeyError(
      "CONFIG_INVALID",
      `--notify-url ${JSON.stringify(text.slice(0, 100))} is not a URL`,
    );
  }
  const host = url.hostname.replace(/^\[|\]$/g, "");
  if (url.protocol !== "https:" && !(url.protocol === "http:" && isLoopbackHost(host))) {
    throw new RekeyError("CONFIG_INVALID", "--notify-url must be https (or http on loopback)");
  }
  return url.toString();
}
