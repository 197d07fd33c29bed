import type { Clock } from "../clock.js";
import type { CredentialStore, DeepReadonly, RotationRecord } from "../store/types.js";

/** What a target receives: the key and the key-free facts around it. */
export interface DeliveryPayload {
  /** The raw key: only the writers that must (files, exec stdin, store) ever touch it. */
  key: string;
  fingerprint: string;
  /** The record principal: "operator:12", "agent:7". */
  principal: string;
  /** The faucet's id (its normalised URL). */
  faucet: string;
  name?: string | undefined;
  operatorId?: number | undefined;
  /** The rotation that issued the key, when one did. */
  rotation?: DeepReadonly<RotationRecord> | undefined;
  cooldownUntil?: string | undefined;
  /**
   * Fingerprints of keys the store knows this principal held (the one its last rotation
   * replaced, its alternates, those its targets received): a file entry holding one of them
   * is this principal's to overwrite.
   */
  heldFingerprints?: readonly string[] | undefined;
  /** Other principals of the store by the fingerprints of their keys ("fp" → "operator:2"). */
  keyOwners?: Readonly<Record<string, string>> | undefined;
}

/** What writers may need from outside: passed in, so tests use real ones without mocks. */
export interface DeliveryEnvironment {
  clock: Clock;
  /** Opens another rekey store for `store` targets (a directory or a URL such as postgres://). */
  openStore?: ((location: string) => Promise<CredentialStore>) | undefined;
  /** The environment exec commands start from (without the key variables); default none. */
  env?: Record<string, string | undefined> | undefined;
  /** The fetch used by webhooks (default: the global one). */
  fetch?: typeof fetch | undefined;
}
