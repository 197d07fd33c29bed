import { RekeyError } from "../errors.js";

/**
 * Whether a store spec holds a password: in the URL's user part (`postgres://u:PW@host`) or
 * as a `password` parameter. Throws nothing (a spec that is not a URL holds none).
 */
export function storeSpecHasPassword(spec: string): boolean {
  const trimmed = spec.trim();
  if (!/^[a-z][a-z0-9+.-]*:\/\//i.test(trimmed)) return false;
  let url: URL;
  try {
    url = new URL(trimmed);
  } catch {
    // Unparsable: look for the shapes a password takes rather than let it through.
    return (
      /^[a-z][a-z0-9+.-]*:\/\/[^/@?#]*:[^/@?#]*@/i.test(trimmed) ||
      /[?&][a-z]*password=/i.test(trimmed)
    );
  }
  if (url.password !== "") return true;
  // `password`, and libpq's `sslpassword` (a client key's passphrase) alike.
  return [...url.searchParams.keys()].some((name) => name.toLowerCase().endsWith("password"));
}

/**
 * Refuses a store spec given as a command-line argument (`--store`) when it holds a password:
 * argv is readable by every local user (`ps`, /proc) and lands in shell history. The same URL
 * in the REKEY_STORE environment variable stays allowed (only the user and root can read a
 * process's environment).
 *
 * @throws RekeyError CONFIG_INVALID naming the option, never repeating the URL.
 */
export function assertNoPasswordInArgument(spec: string | undefined, option = "--store"): void {
  if (spec === undefined || !storeSpecHasPassword(spec)) return;
  throw new RekeyError(
    "CONFIG_INVALID",
    `Refusing a database password on the command line (${option}): other users see it in ps, and it stays in shell history`,
    {
      hint: "Drop the password from the URL and put it in PGPASSWORD or ~/.pgpass, or pass the whole URL in REKEY_STORE.",
      details: { option },
    },
  );
}
