import type { ChildProcess } from "node:child_process";
import { createHash, randomBytes } from "node:crypto";
import { createRequire } from "node:module";
import { dirname, join } from "node:path";
import { type CliRun, startRecorded } from "./built-cli.js";

const httpPackage = createRequire(import.meta.url).resolve("@rekey/http/package.json");
/** The built `rekey-http` (turbo builds it before the tests run). */
export const REKEY_HTTP_BIN = join(dirname(httpPackage), "dist", "bin.js");

/** A bearer token for the kill loop's server, and its configuration (scopes to force). */
export const HTTP_TOKEN = `adversarial-${randomBytes(16).toString("hex")}`;
export const HTTP_TOKENS = JSON.stringify([
  {
    name: "kill-loop",
    sha256: createHash("sha256").update(HTTP_TOKEN, "utf8").digest("hex"),
    scopes: ["status", "rotate", "force"],
  },
]);

/** A running `rekey-http`: its URL, and a promise of its end (after which its output is recorded). */
export interface RunningHttp {
  url: string;
  child: ChildProcess;
  ended: Promise<CliRun>;
}

/**
 * Starts the built `rekey-http` on a free loopback port and waits for the URL it prints.
 * @throws Error when it exits before listening (its stderr in the message).
 */
export async function startHttp(env: Record<string, string | undefined>): Promise<RunningHttp> {
  const { child, result, printed } = startRecorded(REKEY_HTTP_BIN, ["--port", "0"], "rekey-http", {
    env: { REKEY_HTTP_TOKENS: HTTP_TOKENS, ...env },
  });
  const url = await new Promise<string>((resolve, reject) => {
    child.stdout?.on("data", () => {
      const match = /(http:\/\/127\.0\.0\.1:\d+)/.exec(printed().stdout);
      if (match?.[1]) resolve(match[1]);
    });
    void result.then(({ code, signal, stderr }) =>
      reject(new Error(`rekey-http ended (${code ?? signal}) before listening: ${stderr}`)),
    );
  });
  return { url, child, ended: result };
}
