import type { Clock } from "../clock.js";
import { RekeyError } from "../errors.js";
import { createFileStore } from "../store/file-store.js";
import { createMemoryStore } from "../store/memory-store.js";
import type { CredentialStore } from "../store/types.js";

/**
 * Opens the store a front end asked for.
 * `spec`: undefined for the default file store ($REKEY_HOME, $XDG_CONFIG_HOME/rekey,
 * ~/.config/rekey); "memory"; "file:DIR" or a path for a file store in DIR.
 * @throws RekeyError CONFIG_INVALID for a spec it does not understand (e.g. a database URL,
 * whose store lives in its own package).
 */
export async function openCredentialStore(options: {
  spec?: string | undefined;
  env: Record<string, string | undefined>;
  clock?: Clock;
}): Promise<CredentialStore> {
  const spec = options.spec?.trim();
  if (spec === undefined || spec === "" || spec === "file")
    return createFileStore({ env: options.env });
  if (spec === "memory") return createMemoryStore();
  if (/^[a-z][a-z0-9+.-]*:\/\//i.test(spec)) {
    throw new RekeyError(
      "CONFIG_INVALID",
      `Unsupported store ${JSON.stringify(spec.replace(/\/\/[^@/]*@/, "//…@"))}`,
      {
        hint: 'Use "memory", a directory path, or "file:DIR".',
      },
    );
  }
  const dir = spec.startsWith("file:") ? spec.slice("file:".length) : spec;
  return createFileStore({ dir, env: options.env });
}
