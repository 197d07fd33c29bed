import { resolveBaseUrl } from "../client/index.js";
import { isRekeyError } from "../errors.js";
import { verifyAuditChain } from "../store/audit-chain.js";
import type { StoreHealth } from "../store/types.js";
import type { Session } from "./session.js";
import type { HealthReport, Rekey } from "./types.js";

/** What `doctor` reads: the audit log, its chain, the store's and the faucet's health. */
export function createHealth(
  session: Session,
): Pick<Rekey, "history" | "verifyHistory" | "health"> {
  const { env, store, baseUrl, client } = session;
  return {
    async history() {
      return store.readAudit();
    },

    async verifyHistory() {
      return verifyAuditChain(await store.readAudit());
    },

    async health(): Promise<HealthReport> {
      const storeHealth: StoreHealth = await store.health().catch((error: unknown) => ({
        ok: false,
        kind: store.kind,
        location: store.location,
        problems: [isRekeyError(error) ? error.message : "The store could not be read"],
      }));
      const readable = await store.read().then(
        () => true,
        () => false,
      );
      const url = await baseUrl().catch(() => resolveBaseUrl(env));
      let upstream: HealthReport["upstream"] = { ok: true, baseUrl: url };
      try {
        // Any parsed faucet reply proves reachability; an unknown key is a fine probe.
        await (await client()).whoami("lf_healthcheck");
      } catch (error) {
        if (!isRekeyError(error, "UNAUTHORIZED", "INVALID_INPUT")) {
          upstream = {
            ok: false,
            baseUrl: url,
            error: isRekeyError(error) ? error.message : "unreachable",
          };
        }
      }
      return {
        ok: storeHealth.ok && upstream.ok,
        store: {
          ok: storeHealth.ok,
          readable,
          kind: storeHealth.kind,
          location: storeHealth.location,
          problems: storeHealth.problems,
          ...(storeHealth.encryption === undefined ? {} : { encryption: storeHealth.encryption }),
        },
        upstream,
      };
    },
  };
}
