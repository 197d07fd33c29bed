import type { FaucetClient } from "../client/index.js";
import type { Clock } from "../clock.js";
import type { Principal } from "../principal.js";
import type { CredentialStore, ReadOptions, StoreSnapshot, Surface } from "../store/types.js";
import type { ProfileView, SnapshotView } from "./principal-records.js";

/** The steps of a rotation, in order; test hooks may stop the engine after any of them. */
export type RotationStep =
  | "intent-written"
  | "upstream-replied"
  | "key-stored"
  | "verified"
  | "audited"
  | "intent-cleared";

/**
 * The steps of one target's delivery after a rotation: `delivery-pending` (the journal says
 * pending, the target not yet written), `delivery-written` (the target holds the key, the
 * journal does not say so yet).
 */
export type DeliveryStep = "delivery-pending" | "delivery-written";

/** Test seams: real code passes none. */
export interface EngineHooks {
  /** Called after each step; a crash test kills the process here. */
  afterStep?(step: RotationStep | DeliveryStep, principal: Principal): void | Promise<void>;
}

/** What the engine's parts share; built once per `createRekey`. */
export interface EngineContext {
  store: CredentialStore;
  profileName: string;
  surface: Surface;
  clock: Clock;
  lockLeaseMs: number;
  lockWaitMs: number;
  hooks: EngineHooks;
  /** Where a key the store refused is written (see `rescue.ts`), outside the store. */
  rescueDir: string;
  /** How long a rotation keeps retrying a store that refuses the new key before giving up. */
  storeRetryMs: number;
  /** The faucet client for the base URL of the profile in `view` (no store read). */
  client(view: ProfileView): FaucetClient;
  /**
   * The base URL of the profile in `view` (existing profile's, or the configured one for a new
   * profile). @throws RekeyError CONFIG_INVALID when another URL was asked for.
   */
  baseUrl(view: ProfileView): string;
  /** Reads the store once and resolves the profile in it (faucet, operator, acting principal). */
  readView(options?: ReadOptions): Promise<SnapshotView>;
  /** Resolves the profile in a snapshot the engine already holds (one it wrote), without a read. */
  viewOf(snapshot: StoreSnapshot): SnapshotView;
  /**
   * The read-only seed from REKEY_API_KEY / LIGHTNING_WALLET_API_KEY, when it is this
   * principal's; `view` names the faucet to ask whose it is (else the store is read for it).
   */
  envKey(principal: Principal, view?: ProfileView): Promise<string | undefined>;
  /** Drops cached keys after this process wrote the store. */
  invalidateKeys(): void;
}

/**
 * The rotation lock of one principal record: every profile, process and front end touching
 * the principal takes the same one.
 */
export function rotationLockName(recordId: string): string {
  return `rotate.${recordId}`;
}
