import type { FaucetClient } from "../client/index.js";
import type { Clock } from "../clock.js";
import type { Principal } from "../principal.js";
import type { CredentialStore, ReadOptions, Surface } from "../store/types.js";
import type { ProfileView } from "./principal-records.js";

/** The steps of a rotation, in order; test hooks may stop the engine after any of them. */
export type RotationStep =
  | "intent-written"
  | "upstream-replied"
  | "key-stored"
  | "verified"
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
  /** The faucet client for the profile's base URL. */
  client(): Promise<FaucetClient>;
  /** The profile's base URL (existing profile's, or the configured one for a new profile). */
  baseUrl(): Promise<string>;
  /** Reads the store once and resolves the profile in it (faucet, operator, acting principal). */
  readView(options?: ReadOptions): Promise<ProfileView>;
  /** The read-only seed from REKEY_API_KEY / LIGHTNING_WALLET_API_KEY, when it is this principal's. */
  envKey(principal: Principal): Promise<string | undefined>;
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
