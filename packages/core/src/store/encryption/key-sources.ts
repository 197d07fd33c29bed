import { randomBytes } from "node:crypto";
import { constants } from "node:fs";
import { link, unlink } from "node:fs/promises";
import { basename, dirname, join } from "node:path";
import { RekeyError } from "../../errors.js";
import { errnoCode, FILE_MODE, openNoFollow, privacyProblem, syncDir } from "../file-io.js";
import {
  formatMasterKey,
  keyIdOf,
  MASTER_KEY_BYTES,
  type MasterKey,
  parseMasterKey,
} from "./master-key.js";

/**
 * Where the master key comes from, in this order: REKEY_MASTER_KEY (base64),
 * REKEY_MASTER_KEY_FILE (a 0600 file of this user holding it), REKEY_MASTER_KEY_CMD (a command
 * printing it: a cloud KMS, a password manager's CLI). Where none is set, a file store keeps
 * a key file of its own beside its data, generated on first use (see {@link GENERATED_KEY_FILE}).
 */

/** The environment variables of the master key. Empty values count as unset. */
export interface MasterKeyEnv {
  REKEY_MASTER_KEY?: string | undefined;
  REKEY_MASTER_KEY_FILE?: string | undefined;
  REKEY_MASTER_KEY_CMD?: string | undefined;
}

/** The file store's own key file, in the store directory, when no source is configured. */
export const GENERATED_KEY_FILE = "master.key";

/** How long a key command may run. */
const KEY_COMMAND_TIMEOUT_MS = 30_000;

/** The configured source's name, or undefined when none is set. Throws nothing. */
export function explicitKeySource(env: MasterKeyEnv): keyof MasterKeyEnv | undefined {
  if (env.REKEY_MASTER_KEY) return "REKEY_MASTER_KEY";
  if (env.REKEY_MASTER_KEY_FILE) return "REKEY_MASTER_KEY_FILE";
  if (env.REKEY_MASTER_KEY_CMD) return "REKEY_MASTER_KEY_CMD";
  return undefined;
}

/**
 * The master key from the first source set in `env`, or undefined when none is.
 *
 * @throws RekeyError STORE_LOCKED when the source is set but gives no valid key (a key file
 *   that is missing, truncated, open to others or another user's; a command that fails).
 */
export async function loadConfiguredMasterKey(env: MasterKeyEnv): Promise<MasterKey | undefined> {
  if (env.REKEY_MASTER_KEY) return parseMasterKey(env.REKEY_MASTER_KEY, "REKEY_MASTER_KEY");
  if (env.REKEY_MASTER_KEY_FILE) {
    const key = await readKeyFile(env.REKEY_MASTER_KEY_FILE);
    if (key === undefined) {
      throw locked(
        `The master key file ${env.REKEY_MASTER_KEY_FILE} (REKEY_MASTER_KEY_FILE) does not exist`,
        "Restore the key file, or point REKEY_MASTER_KEY_FILE at it.",
      );
    }
    return key;
  }
  if (env.REKEY_MASTER_KEY_CMD) return runKeyCommand(env.REKEY_MASTER_KEY_CMD);
  return undefined;
}

/**
 * Reads a key file: it must be a regular file of this user, mode 0600 (like an ssh key).
 * Undefined when it does not exist.
 *
 * @throws RekeyError STORE_LOCKED when it is open to others, another user's, a link, or does
 *   not hold a key.
 */
export async function readKeyFile(path: string): Promise<MasterKey | undefined> {
  let handle: Awaited<ReturnType<typeof openNoFollow>>;
  try {
    handle = await openNoFollow(path, constants.O_RDONLY);
  } catch (error) {
    if (errnoCode(error) === "ENOENT") return undefined;
    if (error instanceof RekeyError) throw locked(error.message, error.hint);
    throw locked(`Cannot read the master key file ${path} (${errnoCode(error) ?? "error"})`);
  }
  try {
    const problem = privacyProblem(path, await handle.stat(), false);
    if (problem !== undefined) throw locked(`Refusing the master key file: ${problem}`);
    return parseMasterKey(await handle.readFile("utf8"), path);
  } finally {
    await handle.close();
  }
}

/**
 * The store's own key file at `path`, created (0600, durable) when missing and `create` is
 * set. Two processes creating it at once agree on one key: the file appears by `link`, which
 * never replaces an existing one, and the loser reads the winner's.
 *
 * @throws RekeyError STORE_LOCKED (unreadable, truncated, open to others); STORE_UNAVAILABLE
 *   (cannot be written).
 */
export async function loadGeneratedKeyFile(
  path: string,
  create: boolean,
): Promise<MasterKey | undefined> {
  const existing = await readKeyFile(path);
  if (existing !== undefined || !create) return existing;
  const bytes = randomBytes(MASTER_KEY_BYTES);
  const key: MasterKey = { id: keyIdOf(bytes), bytes, source: path };
  const temp = join(dirname(path), `.${basename(path)}.${randomBytes(6).toString("hex")}.tmp`);
  try {
    const handle = await openNoFollow(
      temp,
      constants.O_WRONLY | constants.O_CREAT | constants.O_EXCL,
      FILE_MODE,
    );
    try {
      await handle.writeFile(formatMasterKey(key), "utf8");
      await handle.sync();
    } finally {
      await handle.close();
    }
    try {
      await link(temp, path);
    } catch (error) {
      if (errnoCode(error) !== "EEXIST") throw error;
      return await readKeyFile(path);
    }
    await syncDir(dirname(path));
    return key;
  } catch (error) {
    if (error instanceof RekeyError) throw error;
    throw new RekeyError(
      "STORE_UNAVAILABLE",
      `Cannot create the master key file ${path} (${errnoCode(error) ?? "error"})`,
      { cause: error, details: { path } },
    );
  } finally {
    await unlink(temp).catch(() => {});
  }
}

/** Runs the key command through the shell; its stdout is the key. */
async function runKeyCommand(command: string): Promise<MasterKey> {
  // Loaded here, not at import: only a store whose key comes from a command runs one.
  const { execFile } = await import("node:child_process");
  return new Promise((resolve, reject) => {
    execFile(
      "/bin/sh",
      ["-c", command],
      { timeout: KEY_COMMAND_TIMEOUT_MS, maxBuffer: 64 * 1024, windowsHide: true },
      (error, stdout) => {
        if (error) {
          // Its stderr is not repeated: a secret manager may print anything there.
          const why = error.killed ? "timed out" : `failed (exit ${String(error.code ?? "?")})`;
          reject(
            locked(
              `The master key command (REKEY_MASTER_KEY_CMD) ${why}`,
              "Run the command yourself to see why; it must print the base64 master key on stdout.",
            ),
          );
          return;
        }
        try {
          resolve(parseMasterKey(stdout, "REKEY_MASTER_KEY_CMD"));
        } catch (parseError) {
          reject(parseError);
        }
      },
    );
  });
}

function locked(message: string, hint?: string): RekeyError {
  return new RekeyError("STORE_LOCKED", message, {
    hint:
      hint ??
      "Give the store's master key: REKEY_MASTER_KEY, REKEY_MASTER_KEY_FILE or REKEY_MASTER_KEY_CMD.",
  });
}
