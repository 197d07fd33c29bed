import { isRekeyError } from "../errors.js";
import { fingerprint } from "../fingerprint.js";
import { type Principal, principalKey } from "../principal.js";
import type { CredentialStore } from "../store/types.js";
import type { CurrentKey, KeyProvider } from "./types.js";

export interface KeyProviderDeps {
  store: CredentialStore;
  /** Reads the principal's key from the store (or the environment's seed). */
  currentKey(principal: Principal): Promise<string>;
  /** Turns "the default principal" (undefined) into the profile's active one. */
  resolvePrincipal(principal: Principal | undefined): Promise<Principal>;
}

/**
 * A cache of current keys in front of the store, dropped whenever the store reports a change,
 * so a process picks up a rotation made by another process without a restart.
 */
export function createKeyProvider(
  deps: KeyProviderDeps,
): KeyProvider & { invalidate(): void; close(): void } {
  const cache = new Map<string, CurrentKey>();
  const unwatch = deps.store.watch(() => cache.clear());

  async function current(principal?: Principal): Promise<CurrentKey> {
    const resolved = await deps.resolvePrincipal(principal);
    const cacheKey = principalKey(resolved);
    const cached = cache.get(cacheKey);
    if (cached) return cached;
    const key = await deps.currentKey(resolved);
    const entry = { principal: resolved, key, fingerprint: fingerprint(key) };
    cache.set(cacheKey, entry);
    return entry;
  }

  return {
    current,
    async withKey(principal, use) {
      const first = await current(principal);
      try {
        return await use(first.key);
      } catch (error) {
        if (!isRekeyError(error, "UNAUTHORIZED")) throw error;
        // Another process may have rotated the key a moment ago: read the store once more.
        cache.clear();
        const second = await current(principal);
        if (second.fingerprint === first.fingerprint) throw error;
        return use(second.key);
      }
    },
    invalidate: () => cache.clear(),
    close: () => unwatch(),
  };
}
