import {
  assertNoPasswordInArgument,
  type Clock,
  createRekey,
  currentProfileName,
  openCredentialStore,
} from "@rekey/core";
import { postgresUrlStores } from "@rekey/store-postgres/url-stores";
import type { GlobalOptions, RekeySession } from "./context.js";

/**
 * The real `openRekey` dependency: a credential store (from `--store`, else `REKEY_STORE`,
 * else the default file store; a postgres:// URL opens a PostgreSQL store) and core bound to
 * it with surface "cli".
 * `--profile` beats `REKEY_PROFILE`, which beats the store's current profile (`rekey profiles
 * use`); `--as` beats `REKEY_AS`; `--url` beats `REKEY_API_URL` (read by core from `env`).
 * @throws RekeyError CONFIG_INVALID (bad store spec, profile or URL), STORE_UNAVAILABLE
 */
export function createOpenRekey(options: {
  env: Record<string, string | undefined>;
  clock?: Clock | undefined;
}): (globals: GlobalOptions) => Promise<RekeySession> {
  const { env, clock } = options;
  return async (globals) => {
    assertNoPasswordInArgument(globals.store);
    const store = await openCredentialStore({
      spec: globals.store ?? env.REKEY_STORE,
      env,
      urlStores: postgresUrlStores,
      ...(clock === undefined ? {} : { clock }),
    });
    try {
      const named = globals.profile ?? (env.REKEY_PROFILE || undefined);
      const profile = named ?? (await currentProfileName(store));
      const actAs = globals.as ?? (env.REKEY_AS || undefined);
      const rekey = createRekey({
        store,
        surface: "cli",
        env,
        ...(profile === undefined || profile === "" ? {} : { profile }),
        ...(actAs === undefined ? {} : { actAs }),
        ...(globals.url === undefined ? {} : { baseUrl: globals.url }),
        ...(clock === undefined ? {} : { clock }),
        delivery: {
          openStore: (location) =>
            openCredentialStore({ spec: location, env, urlStores: postgresUrlStores }),
        },
      });
      // What a process killed mid-delivery left: the next one to open the store finishes it.
      // Failed targets backing off are left to `deliver retry`, `doctor --repair`, the next
      // rotation and rekey-http/rekey-mcp, so a broken target does not slow every command.
      await rekey.finishDeliveries({ leftoversOnly: true }).catch(() => undefined);
      return {
        rekey,
        store,
        async close() {
          await rekey.close();
          await store.close();
        },
      };
    } catch (error) {
      await store.close();
      throw error;
    }
  };
}
