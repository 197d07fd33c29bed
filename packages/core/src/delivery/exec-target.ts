import { RekeyError } from "../errors.js";
import type { DeliveryPayload } from "./delivery-payload.js";
import { DEFAULT_DELIVERY_TIMEOUT_MS } from "./target-schema.js";

/**
 * The `exec` target: runs a command with the new key on its stdin (one line), never on its
 * argv (other users see argv in `ps`) nor in its environment (inherited by everything it
 * starts). Exit 0 means delivered. It gets REKEY_PRINCIPAL and REKEY_FINGERPRINT to know which
 * key it holds; the parent's key variables are removed from its environment, since they hold
 * the key that just died.
 */

const KEY_VARIABLES = ["REKEY_API_KEY", "LIGHTNING_WALLET_API_KEY"];

/**
 * Runs the command and waits for it, killing it (and its process group) after `timeoutMs`.
 * @throws RekeyError CONFIG_INVALID when it cannot be started; UPSTREAM_TIMEOUT when it hangs;
 *   UPSTREAM_UNAVAILABLE when it exits non-zero or is killed. Its output is discarded, never
 *   kept in the error: the command holds the key, and masking the key cannot catch it encoded
 *   (base64, a Basic auth header), while the error is stored and shown to status readers.
 */
export async function deliverToExec(
  command: readonly string[],
  payload: DeliveryPayload,
  parentEnv: Record<string, string | undefined>,
  timeoutMs = DEFAULT_DELIVERY_TIMEOUT_MS,
): Promise<void> {
  const [file, ...args] = command;
  if (file === undefined)
    return Promise.reject(new RekeyError("CONFIG_INVALID", "No command to run"));
  const env: Record<string, string> = {};
  for (const [name, value] of Object.entries(parentEnv)) {
    if (value !== undefined && !KEY_VARIABLES.includes(name)) env[name] = value;
  }
  env.REKEY_PRINCIPAL = payload.principal;
  env.REKEY_FINGERPRINT = payload.fingerprint;
  // Loaded here, not at import: every command that opens a store loads this module, few run one.
  const { spawn } = await import("node:child_process");
  return new Promise((resolve, reject) => {
    // Its own process group, so a timeout kills what it started too.
    const child = spawn(file, args, { env, stdio: ["pipe", "ignore", "ignore"], detached: true });
    let timedOut = false;
    const timer = setTimeout(() => {
      timedOut = true;
      try {
        if (child.pid !== undefined) process.kill(-child.pid, "SIGKILL");
      } catch {
        child.kill("SIGKILL");
      }
    }, timeoutMs);
    child.stdin.on("error", () => {
      // A command that exits without reading stdin: its exit code says the rest.
    });
    child.stdin.end(`${payload.key}\n`);
    child.on("error", (error) => {
      clearTimeout(timer);
      reject(
        new RekeyError(
          "CONFIG_INVALID",
          `Cannot run ${file}: ${(error as NodeJS.ErrnoException).code ?? error.message}`,
          {
            hint: "Use the command's full path, and check it is executable.",
            cause: error,
          },
        ),
      );
    });
    // "exit", not "close": a command that starts a daemon (`svc &`, `setsid`) ends when it
    // exits, whatever its children keep open.
    child.on("exit", (code, signal) => {
      clearTimeout(timer);
      if (timedOut) {
        reject(
          new RekeyError(
            "UPSTREAM_TIMEOUT",
            `${file} did not finish within ${timeoutMs} ms and was killed`,
          ),
        );
      } else if (code === 0) {
        resolve();
      } else {
        const how = code === null ? `was killed by ${signal}` : `exited with code ${code}`;
        reject(
          new RekeyError("UPSTREAM_UNAVAILABLE", `${file} ${how}`, {
            hint: "Its output is not kept (it could carry the key): run the command by hand to see why.",
          }),
        );
      }
    });
  });
}
