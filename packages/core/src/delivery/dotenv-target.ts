import { RekeyError } from "../errors.js";
import { inspectTargetFile, readTargetFile, replaceTargetFile } from "./target-file.js";
import { ENV_NAME_PATTERN } from "./target-schema.js";

/**
 * The `dotenv` target: one variable of a `.env` file. Every other byte stays as it was (other
 * lines, comments, CRLF line ends, a missing final newline); the variable's lines keep their
 * indentation, `export ` prefix, quotes and trailing comment, and only the value changes. Every
 * line of the variable changes: loaders differ on which duplicate wins, so all of them hold the
 * new key. A file without the variable gets it appended.
 */

// A faucet key is base64url-ish; anything that would need escaping in a .env is refused
// rather than quoted one way that some loader reads another way.
const SAFE_VALUE = /^[A-Za-z0-9_\-.:+/=]+$/;

/**
 * The file text with `variable` set to `value`.
 * @throws RekeyError INVALID_INPUT for a name or value a .env cannot hold plainly.
 */
export function setDotenvVariable(text: string, variable: string, value: string): string {
  if (!ENV_NAME_PATTERN.test(variable)) {
    throw new RekeyError(
      "INVALID_INPUT",
      `${JSON.stringify(variable.slice(0, 40))} is not a variable name`,
    );
  }
  if (!SAFE_VALUE.test(value)) {
    throw new RekeyError(
      "INVALID_INPUT",
      "The key holds characters a .env file cannot hold unquoted",
    );
  }
  // Split into lines, each with its own terminator (so CRLF and LF are kept per line).
  const lines = text.match(/[^\n]*\n|[^\n]+$/g) ?? [];
  const assignment = new RegExp(
    `^([ \\t]*(?:export[ \\t]+)?${variable}[ \\t]*=[ \\t]*)(.*?)(\\r?\\n?)$`,
    "s",
  );
  let found = false;
  const updated = lines.map((line) => {
    const match = assignment.exec(line);
    if (!match) return line;
    found = true;
    const [, head = "", rest = "", end = ""] = match;
    return `${head}${replaceValue(rest, value)}${end}`;
  });
  if (found) return updated.join("");
  const crlf = /\r\n/.test(text);
  const eol = crlf ? "\r\n" : "\n";
  if (text === "") return `${variable}=${value}${eol}`;
  // A file that ended without a newline keeps ending without one.
  return text.endsWith("\n")
    ? `${text}${variable}=${value}${eol}`
    : `${text}${eol}${variable}=${value}`;
}

/** Replaces the value at the start of `rest`, keeping its quotes and what follows it. */
function replaceValue(rest: string, value: string): string {
  const quote = rest[0];
  if (quote === '"' || quote === "'" || quote === "`") {
    const close = rest.indexOf(quote, 1);
    // An unterminated quote (a multi-line value): the whole remainder was the value.
    return close === -1
      ? `${quote}${value}${quote}`
      : `${quote}${value}${quote}${rest.slice(close + 1)}`;
  }
  // Unquoted: the value ends at a ` #` comment or at trailing blanks.
  const end = rest.search(/[ \t]+#|[ \t]+$/);
  return end === -1 ? value : `${value}${rest.slice(end)}`;
}

/**
 * Sets one variable of an existing .env file to the key: atomic, keeping the file's mode.
 * @throws RekeyError CONFIG_INVALID for a missing file, a link, a directory, another user's
 *   file or one that others can read; STORE_UNAVAILABLE when it cannot be written.
 */
export async function deliverToDotenv(path: string, variable: string, key: string): Promise<void> {
  const stats = await inspectTargetFile(path, 0o007);
  if (stats === undefined) {
    throw new RekeyError("CONFIG_INVALID", `Refusing to deliver to ${path}: it does not exist`, {
      hint: `Create it first (touch ${path} && chmod 600 ${path}); rekey does not guess where a service reads its .env.`,
      details: { path },
    });
  }
  const text = await readTargetFile(path);
  await replaceTargetFile(path, setDotenvVariable(text, variable, key), stats.mode & 0o777);
}
