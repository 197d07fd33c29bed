import type { FaucetClient } from "../client/index.js";
import type { Clock } from "../clock.js";
import type { DeliveryEnvironment } from "../delivery/delivery-payload.js";
import type { CredentialStore, Surface } from "../store/types.js";
import type { EngineHooks } from "./context.js";

/** Options of {@link createRekey}. */
export interface RekeyOptions {
  store: CredentialStore;
  surface: Surface;
  /** Profile name (default "default"). */
  profile?: string;
  /**
   * The faucet URL for a new profile. An existing profile keeps its own URL: asking for another
   * one is CONFIG_INVALID, so a key is never sent to a URL it was not saved for.
   */
  baseUrl?: string;
  /** Environment: REKEY_API_URL, LIGHTNING_WALLET_API_URL, REKEY_API_KEY, LIGHTNING_WALLET_API_KEY. */
  env?: Record<string, string | undefined>;
  clock?: Clock;
  /** How long a rotation waits for another one on the same principal (default 30 s). */
  lockWaitMs?: number;
  /** How long a crashed rotation's lock outlives its holder (default 20 s; waiters apply their own). */
  lockLeaseMs?: number;
  /**
   * Act as a stored principal instead of the profile's own ("agent:7", "operator:12"): the
   * `--as` of every front end. Its record must be on the profile's faucet.
   */
  actAs?: string;
  /** A prepared client (tests); by default one is made for the profile's URL. */
  client?: FaucetClient;
  /** Test seams only. */
  hooks?: EngineHooks;
  /**
   * What `store` delivery targets open other stores with (a directory or a URL such as
   * postgres://); without it, store targets fail with CONFIG_INVALID. `fetch` for webhooks.
   */
  delivery?: Pick<DeliveryEnvironment, "openStore" | "fetch">;
  /**
   * How long a rotation retries a store that refuses the new key (default 60 s, or
   * REKEY_STORE_RETRY_MS); the key goes to a rescue file after the first seconds either way.
   */
  storeRetryMs?: number;
}
