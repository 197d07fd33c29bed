import { type ChildProcess, spawn } from "node:child_process";
import { createHash, randomBytes } from "node:crypto";
import { existsSync } from "node:fs";
import { delimiter, join } from "node:path";
import { createInterface } from "node:readline";
import { RekeyError } from "@rekey/core";
import type { CommandContext } from "../context.js";

/**
 * `rekey ui`: the web console on loopback. It runs `rekey-http --ui` on 127.0.0.1 over this
 * CLI's store and profile, and prints (and opens) the one-time login link it prints, like
 * `jupyter notebook`. The server needs a bearer token configured: a random one, whose hash only
 * is passed and which nothing uses, so the API answers no one and the console only the link.
 */

/** `rekey-http`: REKEY_HTTP_BIN, else the first on PATH. */
function findHttpBin(env: Record<string, string | undefined>): string | undefined {
  if (env.REKEY_HTTP_BIN !== undefined && env.REKEY_HTTP_BIN !== "") return env.REKEY_HTTP_BIN;
  for (const dir of (env.PATH ?? "").split(delimiter)) {
    if (dir === "") continue;
    const candidate = join(dir, "rekey-http");
    if (existsSync(candidate)) return candidate;
  }
  return undefined;
}

/** Opens `url` in the desktop's browser, if there is one; failing quietly is fine. */
function openBrowser(url: string): void {
  const command = process.platform === "darwin" ? "open" : "xdg-open";
  try {
    const child = spawn(command, [url], { stdio: "ignore", detached: true });
    child.on("error", () => undefined);
    child.unref();
  } catch {
    // No browser launcher: the link is printed.
  }
}

export async function runUi(
  context: CommandContext,
  options: Record<string, unknown>,
): Promise<void> {
  const { env } = context.deps;
  const bin = findHttpBin(env);
  if (bin === undefined) {
    throw new RekeyError("CONFIG_INVALID", "rekey ui runs rekey-http, which was not found", {
      hint: "Install @rekey/http (it provides rekey-http), or set REKEY_HTTP_BIN to its path.",
    });
  }
  const portText = typeof options.port === "string" ? options.port : "0";
  if (!/^\d{1,5}$/.test(portText) || Number(portText) > 65_535) {
    throw new RekeyError("INVALID_INPUT", `--port ${JSON.stringify(portText)} is not a port`, {
      hint: "Use 0 (any free port) to 65535.",
    });
  }
  const unused = randomBytes(32).toString("base64url");
  const tokens = JSON.stringify([
    {
      name: "rekey-ui",
      sha256: createHash("sha256").update(unused).digest("hex"),
      scopes: ["status"],
    },
  ]);
  const { globals } = context;
  const childEnv: Record<string, string> = {};
  for (const [name, value] of Object.entries(env)) if (value !== undefined) childEnv[name] = value;
  Object.assign(childEnv, {
    REKEY_HTTP_TOKENS: tokens,
    ...(globals.store === undefined ? {} : { REKEY_STORE: globals.store }),
    ...(globals.profile === undefined ? {} : { REKEY_PROFILE: globals.profile }),
    ...(globals.as === undefined ? {} : { REKEY_AS: globals.as }),
  });
  const args = ["--ui", "--host", "127.0.0.1", "--port", portText, "--log-level", "warn"];
  const child: ChildProcess = bin.endsWith(".js")
    ? spawn(process.execPath, [bin, ...args], {
        env: childEnv,
        stdio: ["ignore", "ignore", "pipe"],
      })
    : spawn(bin, args, { env: childEnv, stdio: ["ignore", "ignore", "pipe"] });
  const exited = new Promise<number | null>((resolve) => {
    child.once("exit", (code) => resolve(code));
    child.once("error", () => resolve(1));
  });
  const lines = createInterface({ input: child.stderr as NodeJS.ReadableStream });
  const link = await new Promise<string | undefined>((resolve) => {
    lines.on("line", (line) => {
      const match = /^rekey console: open (\S+)/.exec(line);
      if (match !== null) resolve(match[1]);
      else context.deps.stderr.write(`${line}\n`);
    });
    void exited.then(() => resolve(undefined));
  });
  if (link === undefined) {
    throw new RekeyError("CONFIG_INVALID", "rekey-http stopped before the console started", {
      hint: "Its messages are above; `rekey status` checks the store and profile.",
    });
  }
  const url = link.slice(0, link.indexOf("/ui/") + 3);
  context.output.result("ui", { url, login_url: link }, () =>
    [
      `rekey console at ${context.output.colors.bold(url)} (loopback only; Ctrl-C stops it)`,
      `  sign in with this one-time link (15 minutes): ${link}`,
    ].join("\n"),
  );
  if (options.open !== false && context.deps.terminal.stdout) openBrowser(link);
  await Promise.race([context.deps.waitForInterrupt(), exited]);
  if (child.exitCode === null) {
    child.kill("SIGTERM");
    await exited;
  }
  context.output.note("console stopped");
}
