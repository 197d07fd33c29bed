import type { Clock } from "../clock.js";
import { RekeyError } from "../errors.js";
import { createFileStore } from "../store/file-store.js";
import { createMemoryStore } from "../store/memory-store.js";
import type { CredentialStore } from "../store/types.js";

/**
 * Opens a store named by a URL, for one URL scheme ("postgres"). Backends that live in their
 * own packages (`@rekey/store-postgres`) provide these, so core does not depend on them.
 */
export type UrlStoreOpener = (
  url: string,
  context: { env: Record<string, string | undefined> },
) => Promise<CredentialStore>;

/**
 * Opens the store a front end asked for.
 * `spec`: undefined for the default file store ($REKEY_HOME, $XDG_CONFIG_HOME/rekey,
 * ~/.config/rekey); "memory"; "file:DIR" or a path for a file store in DIR; a URL whose
 * scheme is in `urlStores` (e.g. postgres://) for that backend.
 * @throws RekeyError CONFIG_INVALID for a spec it does not understand (a URL with no opener);
 *   whatever the opener throws.
 */
export async function openCredentialStore(options: {
  spec?: string | undefined;
  env: Record<string, string | undefined>;
  clock?: Clock;
  /** Openers by URL scheme, lower case and without the colon: `{ postgres: ... }`. */
  urlStores?: Readonly<Record<string, UrlStoreOpener>>;
}): Promise<CredentialStore> {
  const spec = options.spec?.trim();
  if (spec === undefined || spec === "" || spec === "file")
    return createFileStore({ env: options.env });
  if (spec === "memory") return createMemoryStore();
  const scheme = /^([a-z][a-z0-9+.-]*):\/\//i.exec(spec)?.[1]?.toLowerCase();
  if (scheme !== undefined) {
    const open = options.urlStores?.[scheme];
    if (open !== undefined) return open(spec, { env: options.env });
    const known = Object.keys(options.urlStores ?? {}).map((name) => `${name}://...`);
    throw new RekeyError(
      "CONFIG_INVALID",
      // The URL is not repeated: it may hold a password.
      `Unsupported store: this program does not open ${scheme}:// URLs`,
      { hint: `Use "memory", a directory path, "file:DIR"${known.map((k) => `, ${k}`).join("")}.` },
    );
  }
  const dir = spec.startsWith("file:") ? spec.slice("file:".length) : spec;
  return createFileStore({ dir, env: options.env });
}
