import { readFile, stat } from "node:fs/promises";
import { RekeyError } from "./errors.js";
import { currentUid, errnoCode } from "./store/file-io.js";

/**
 * The shortest bearer token a server accepts: 32 characters, what `openssl rand -hex 16`
 * prints (128 bits). A shorter one can be guessed, or read over a shoulder.
 */
export const MIN_BEARER_TOKEN_LENGTH = 32;

/**
 * Reads a secret a server is configured with (a bearer token, a signing secret), trimmed. The
 * file must be this user's and closed to group and others, as the master key file and a
 * webhook's secret file must: a secret that other users of the machine can read guards
 * nothing. The mode checked is the file's own (`stat` follows a link, so a secret mounted
 * through one, as Kubernetes does, is judged by what it points at).
 *
 * @param flag the option that named the file, for the message ("--bearer-token-file").
 * @throws RekeyError CONFIG_INVALID when it cannot be read, is not a regular file, is another
 *   user's, is open to group or others (the hint says `chmod 600`), or is empty.
 */
export async function readSecretFile(flag: string, path: string): Promise<string> {
  let text: string;
  try {
    const stats = await stat(path);
    if (!stats.isFile()) {
      throw new RekeyError("CONFIG_INVALID", `${flag} ${path} is not a regular file`, {
        details: { path },
      });
    }
    const uid = currentUid();
    if (uid !== undefined && stats.uid !== uid) {
      throw new RekeyError(
        "CONFIG_INVALID",
        `Refusing ${flag} ${path}: it is owned by uid ${stats.uid}, not by this user (uid ${uid})`,
        {
          hint: `Give it to this user: chown ${uid} ${path} && chmod 600 ${path}`,
          details: { path },
        },
      );
    }
    if ((stats.mode & 0o077) !== 0) {
      const mode = (stats.mode & 0o777).toString(8);
      throw new RekeyError(
        "CONFIG_INVALID",
        `Refusing ${flag} ${path}: it has mode ${mode}, so other users of this machine can read the secret`,
        {
          hint: `chmod 600 ${path} (and use a new secret if others may have read it)`,
          details: { path },
        },
      );
    }
    text = (await readFile(path, "utf8")).trim();
  } catch (cause) {
    if (cause instanceof RekeyError) throw cause;
    throw new RekeyError(
      "CONFIG_INVALID",
      `Cannot read ${flag} ${path} (${errnoCode(cause) ?? "error"})`,
      { cause, details: { path } },
    );
  }
  if (text === "") {
    throw new RekeyError("CONFIG_INVALID", `${flag} ${path} is empty`, { details: { path } });
  }
  return text;
}

/**
 * A bearer token long enough to be a secret ({@link MIN_BEARER_TOKEN_LENGTH} characters).
 * @param source where it came from, for the message ("--bearer-token-file /run/token").
 * @throws RekeyError CONFIG_INVALID when it is shorter (the message never repeats it).
 */
export function assertBearerTokenStrength(token: string, source: string): string {
  if (token.length < MIN_BEARER_TOKEN_LENGTH) {
    throw new RekeyError(
      "CONFIG_INVALID",
      `The bearer token from ${source} has ${token.length} characters; a token must have at least ${MIN_BEARER_TOKEN_LENGTH} to be hard to guess`,
      { hint: "Make one with: openssl rand -hex 32" },
    );
  }
  return token;
}
