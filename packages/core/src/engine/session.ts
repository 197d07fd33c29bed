import {
  createFaucetClient,
  type FaucetClient,
  resolveBaseUrl,
  validateBaseUrl,
} from "../client/index.js";
import { systemClock } from "../clock.js";
import { type DeliveryOutcome, deliverRecord } from "../delivery/delivery-journal.js";
import { isRekeyError, RekeyError } from "../errors.js";
import { fingerprint } from "../fingerprint.js";
import {
  agent,
  cooldownMinutes,
  OPERATOR,
  type Principal,
  principalLabel,
  samePrincipal,
} from "../principal.js";
import { openKey } from "../store/encryption/sealed-key.js";
import {
  operatorRecordPrincipal,
  RECORD_PRINCIPAL_PATTERN,
  recordIdOf,
} from "../store/record-ids.js";
import { DEFAULT_PROFILE, PROFILE_NAME_PATTERN } from "../store/schema.js";
import type { ReadOptions, StoreSnapshot } from "../store/types.js";
import { killPoint } from "../testing/kill-points.js";
import type { DeliveryStep, EngineContext } from "./context.js";
import { createKeyProvider } from "./key-provider.js";
import {
  actAsHeldIn,
  activePrincipalOf,
  missingKeyError,
  type ProfileView,
  principalOfRecord,
  recordOf,
  recordPrincipalOf,
  recordsOfView,
  type SnapshotView,
  storedKeyOf,
  unheldActAsError,
  viewOf,
} from "./principal-records.js";
import type { RekeyOptions } from "./rekey-options.js";
import { rescueDirOf } from "./rescue.js";
import { keyLostError, resolveIntent } from "./resolve-intent.js";
import type { CompletedRotation } from "./rotation.js";
import { secondsUntil } from "./rotation-checks.js";
import type { PendingResolution, RotationResult } from "./types.js";

/**
 * What every operation of one Rekey shares: the options checked once, the profile as one read
 * of the store resolves it, the faucet client, the environment's seed key, the key cache, the
 * journals to resolve before anything else, locks, and the rotation's result as callers see it.
 * @throws RekeyError CONFIG_INVALID for a bad profile name or URL.
 */
export function createSession(options: RekeyOptions) {
  const env = options.env ?? {};
  const profileName = options.profile ?? DEFAULT_PROFILE;
  if (!PROFILE_NAME_PATTERN.test(profileName)) {
    throw new RekeyError(
      "CONFIG_INVALID",
      `Invalid profile name ${JSON.stringify(profileName.slice(0, 70))}`,
      {
        hint: "Use letters, digits, '.', '_' or '-' (up to 64 characters).",
      },
    );
  }
  const actAs = options.actAs;
  if (actAs !== undefined && (!RECORD_PRINCIPAL_PATTERN.test(actAs) || actAs === "operator")) {
    throw new RekeyError(
      "CONFIG_INVALID",
      `Invalid principal ${JSON.stringify(actAs.slice(0, 40))} to act as`,
      { hint: "Use agent:ID or operator:ID, as `rekey profiles show` lists them." },
    );
  }
  const explicitUrl = options.baseUrl ?? env.REKEY_API_URL ?? env.LIGHTNING_WALLET_API_URL;
  // Where that URL came from, for a hint that says what to change.
  const explicitUrlSource =
    options.baseUrl !== undefined
      ? undefined
      : env.REKEY_API_URL !== undefined
        ? "REKEY_API_URL"
        : "LIGHTNING_WALLET_API_URL";
  if (explicitUrl !== undefined) validateBaseUrl(explicitUrl);
  const { store, surface } = options;
  const clock = options.clock ?? systemClock;
  const envApiKey = env.REKEY_API_KEY ?? env.LIGHTNING_WALLET_API_KEY;

  const clients = new Map<string, FaucetClient>();
  let resolving: Promise<void> | undefined;
  // The snapshot an idempotent run's rotation starts from, by request_id (see withIdempotency).
  const idempotentBases = new Map<string, StoreSnapshot>();
  let envIdentity: Promise<EnvIdentity> | undefined;
  // The operator record of the environment's key, once whoami has told its id.
  let envOperator: string | undefined;

  /** Reads the store once and resolves this profile in it. */
  async function readView(readOptions?: ReadOptions): Promise<SnapshotView> {
    return snapshotView(await store.read(readOptions));
  }

  /** Resolves this profile in a snapshot already held. */
  function snapshotView(snapshot: StoreSnapshot): SnapshotView {
    const profile = snapshot.data.profiles[profileName];
    return {
      ...viewOf(snapshot.data, profileName, profile?.baseUrl ?? defaultUrl(), {
        actAs,
        envOperator,
      }),
      snapshot,
    };
  }

  function defaultUrl(): string {
    return explicitUrl ?? resolveBaseUrl(env);
  }

  /** The profile's URL; @throws RekeyError CONFIG_INVALID when another URL was asked for. */
  function baseUrlOf(profile: ProfileView["profile"]): string {
    if (!profile) return defaultUrl();
    if (explicitUrl !== undefined && normaliseUrl(explicitUrl) !== normaliseUrl(profile.baseUrl)) {
      throw new RekeyError(
        "CONFIG_INVALID",
        `Profile "${profileName}" holds keys for ${profile.baseUrl}, not ${explicitUrl}: keys are never sent to another URL`,
        { hint: otherUrlHint(profile.baseUrl) },
      );
    }
    return profile.baseUrl;
  }

  /**
   * Two spellings of one faucet (the sandbox answers on `/` and on `/ai-agents/api`) are two
   * faucets to the store, so the fix is nearly always to ask for the profile's own URL: name it,
   * and the setting that asked for another one.
   */
  function otherUrlHint(profileUrl: string): string {
    const useIt =
      explicitUrlSource === undefined
        ? `Give the faucet URL ${profileUrl} (--url), or none, to use this profile's keys`
        : `Set ${explicitUrlSource}=${profileUrl} (or unset it) to use this profile's keys`;
    return `${useIt}; a faucet at another URL needs a profile of its own (--profile NAME).`;
  }

  async function baseUrl(): Promise<string> {
    return baseUrlOf((await readView()).profile);
  }

  /** The client of the profile in `view` (its URL is in the view: no read). */
  function clientOf(view: ProfileView): FaucetClient {
    return clientFor(baseUrlOf(view.profile));
  }

  async function client(): Promise<FaucetClient> {
    return clientFor(await baseUrl());
  }

  function clientFor(url: string): FaucetClient {
    if (options.client) return options.client;
    let existing = clients.get(url);
    if (!existing) {
      existing = createFaucetClient({ baseUrl: url, clock });
      clients.set(url, existing);
    }
    return existing;
  }

  /**
   * Which principal the environment's key belongs to (asked once, with whoami, on the faucet
   * `view` names; else the store is read for it), when it may act for this profile: a profile
   * with no principal yet takes it, a profile acting as a principal (its own, or `actAs`)
   * only when the key is that principal's. An agent's session with the operator's key in its
   * environment must not act as the operator, nor an operator profile whose key is lost as
   * the agent whose key LIGHTNING_WALLET_API_KEY holds.
   */
  async function envPrincipal(view?: ProfileView): Promise<Principal | undefined> {
    if (envApiKey === undefined || envApiKey === "") return undefined;
    const seen = view ?? (await readView());
    const identity = await envIdentityOn(seen);
    const own = ownPrincipalOf(seen);
    if (own !== undefined && own !== identity.seed) return undefined;
    envOperator = identity.operator;
    return identity.principal;
  }

  /** Whose the environment's key is, asked once per session. */
  function envIdentityOn(view: ProfileView): Promise<EnvIdentity> {
    envIdentity ??= (async () => {
      const identity = await clientOf(view).whoami(envApiKey ?? "");
      const operator = operatorRecordPrincipal(
        identity.type === "operator" ? identity.id : identity.operatorId,
      );
      return identity.type === "operator"
        ? { principal: OPERATOR, seed: operator, operator }
        : { principal: agent(identity.id), seed: `agent:${identity.id}`, operator };
    })().catch((error: unknown) => {
      // An unreachable faucet now must not hide the seed for the life of the process.
      envIdentity = undefined;
      throw error;
    });
    return envIdentity;
  }

  /**
   * The record principal the profile acts as by its own record (or `actAs`), not counting
   * what the environment's key taught: undefined for a profile with no principal yet.
   */
  function ownPrincipalOf(view: ProfileView): string | undefined {
    return actAs ?? view.profile?.actsAs ?? view.profile?.operator;
  }

  async function envKey(principal: Principal, view?: ProfileView): Promise<string | undefined> {
    if (envApiKey === undefined || envApiKey === "") return undefined;
    const seeded = await envPrincipal(view).catch(() => undefined);
    return seeded && samePrincipal(seeded, principal) ? envApiKey : undefined;
  }

  const keyProviderRef: { invalidate(): void } = { invalidate: () => {} };
  const context: EngineContext = {
    store,
    profileName,
    surface,
    clock,
    lockLeaseMs: options.lockLeaseMs ?? 20_000,
    lockWaitMs: options.lockWaitMs ?? 30_000,
    hooks: options.hooks ?? {},
    rescueDir: rescueDirOf(env, store.location),
    storeRetryMs:
      options.storeRetryMs ??
      (Number(env.REKEY_STORE_RETRY_MS) > 0 ? Number(env.REKEY_STORE_RETRY_MS) : 60_000),
    client: clientOf,
    baseUrl: (view) => baseUrlOf(view.profile),
    readView,
    viewOf: snapshotView,
    envKey,
    invalidateKeys: () => keyProviderRef.invalidate(),
  };
  const deliveryJournal = {
    store,
    clock,
    surface,
    profileName,
    lockLeaseMs: context.lockLeaseMs,
    lockWaitMs: context.lockWaitMs,
    environment: { clock, env, ...options.delivery },
    afterStep: (step: DeliveryStep, recordPrincipal: string) => {
      killPoint(step === "delivery-pending" ? "delivery.pending" : "delivery.written");
      return context.hooks.afterStep?.(step, principalOfRecord(recordPrincipal));
    },
  };

  /**
   * Delivers a committed, verified rotation's key to the principal's targets. Never throws: a
   * delivery that cannot run now stays stale in the store, for `status`, `doctor` and a retry.
   */
  async function deliverRotation(
    recordId: string,
    known?: StoreSnapshot,
  ): Promise<DeliveryOutcome[] | undefined> {
    try {
      // The rotation's last write tells whether there are targets: no read for the usual none.
      const record = (known ?? (await store.read())).data.principals[recordId];
      if (!record?.deliveries?.length) return undefined;
      return await deliverRecord(deliveryJournal, recordId);
    } catch {
      // The store or the delivery lock is unavailable now: the targets show as stale, and the
      // next process that opens the store delivers.
      return undefined;
    }
  }

  /**
   * Resolves every leftover intent of the profile's principals before anything else uses the
   * store. Concurrent callers share one pass.
   */
  async function resolveLeftovers(): Promise<PendingResolution[]> {
    const view = await readView();
    const pending = pendingIn(view);
    const results: PendingResolution[] = [];
    for (const recordPrincipal of pending) {
      const resolution = await resolveIntent(context, view.faucet, recordPrincipal);
      if (resolution) results.push(resolution);
    }
    return results;
  }

  /** The record principals of this view with an unfinished rotation (or an unaudited loss). */
  function pendingIn(view: ProfileView): string[] {
    return recordsOfView(view)
      .filter((record) => record.intent !== undefined || record.keyLost?.audited === false)
      .map((record) => record.principal);
  }

  /**
   * Resolves leftover intents before the store is used. `seen`, a view the caller has just
   * read, saves a read when it holds no intent (the common case).
   */
  async function ensureResolved(seen?: ProfileView): Promise<void> {
    if (seen !== undefined && pendingIn(seen).length === 0) return;
    resolving ??= resolveLeftovers()
      .then(() => undefined)
      .finally(() => {
        resolving = undefined;
      });
    await resolving;
  }

  /** The view's acting principal when the store holds its key. */
  function storedActiveIn(view: ProfileView): Principal | undefined {
    const active = activePrincipalOf(view);
    return active && storedKeyOf(view, active) ? active : undefined;
  }

  /** The principal a view acts as: its own when it holds a key, else the env seed's. */
  async function activeIn(view: ProfileView): Promise<Principal | undefined> {
    return storedActiveIn(view) ?? seededActiveIn(view);
  }

  /**
   * The env seed's principal, for a view whose acting principal holds no stored key.
   * @throws RekeyError NOT_FOUND when `actAs` names a principal the store holds no key for.
   */
  async function seededActiveIn(view: ProfileView): Promise<Principal | undefined> {
    await requireActAsHeld(view);
    return envPrincipal(view);
  }

  /**
   * `actAs` (`--as`, REKEY_AS) names whom every operation of this session acts as. When the
   * store holds no key for it on the profile's faucet, and the environment's key is not its,
   * nothing can act as it: every operation is refused (see unheldActAsError).
   * @throws RekeyError NOT_FOUND (`missing: "profile"`: the session itself holds no key)
   */
  async function requireActAsHeld(view: ProfileView): Promise<void> {
    if (actAs === undefined || actAsHeldIn(view, actAs)) return;
    if ((await envPrincipal(view)) !== undefined) return;
    throw unheldActAsError(actAs, view.profile?.baseUrl ?? defaultUrl());
  }

  async function activePrincipal(): Promise<Principal | undefined> {
    return activeIn(await readView());
  }

  async function requireActive(view?: ProfileView): Promise<Principal> {
    const seen = view ?? (await readView());
    const active = await activeIn(seen);
    if (!active) {
      throwIfLost(seen, activePrincipalOf(seen) ?? OPERATOR);
      throw new RekeyError("NOT_FOUND", `Profile "${profileName}" holds no key`, {
        hint: "Run `rekey register` or `rekey login`, or set REKEY_API_KEY.",
        details: { missing: "profile" },
      });
    }
    return active;
  }

  /** The current key of a principal: the store's, else the environment's seed. */
  async function currentKey(
    principal: Principal,
    view?: ProfileView,
  ): Promise<{ key: string; fingerprint: string }> {
    const seen = view ?? (await readView());
    // A key of another principal (the operator's, for `--as agent:9 agents`) is not handed
    // out for a session acting as one the store does not hold.
    if (actAs !== undefined && !storedActiveIn(seen)) await requireActAsHeld(seen);
    const stored = storedKeyOf(seen, principal);
    if (stored) return { key: openKey(stored.key), fingerprint: stored.fingerprint };
    const seeded = await envKey(principal, seen);
    if (seeded !== undefined) return { key: seeded, fingerprint: fingerprint(seeded) };
    throwIfLost(seen, principal);
    throw missingKeyError(principal, profileName);
  }

  /** A principal without a key whose loss is recorded: KEY_LOST, with the way back. */
  function throwIfLost(view: ProfileView, principal: Principal): void {
    const lost = recordOf(view, principal)?.keyLost;
    if (lost && recordOf(view, principal)?.key === undefined) {
      throw keyLostError(principal, lost.requestId);
    }
  }

  /** The record principal of `principal` in a view (the env seed's operator when unstored). */
  async function recordPrincipalIn(view: ProfileView, principal: Principal): Promise<string> {
    const known = recordPrincipalOf(view, principal);
    if (known !== undefined) return known;
    await envPrincipal(view).catch(() => undefined);
    if (envOperator !== undefined) return envOperator;
    throw missingKeyError(principal, profileName);
  }

  const keyProvider = createKeyProvider({
    store,
    currentKey: async (principal) => (await currentKey(principal)).key,
    resolvePrincipal: async (principal) => principal ?? (await requireActive()),
  });
  keyProviderRef.invalidate = () => keyProvider.invalidate();

  /** Runs `work` holding the named lock, as a rotation would hold its principal's. */
  async function withLock<T>(name: string, work: () => Promise<T>): Promise<T> {
    const lock = await store.lock(name, {
      leaseMs: context.lockLeaseMs,
      waitMs: context.lockWaitMs,
    });
    try {
      return await work();
    } finally {
      await lock.release();
    }
  }

  /** The lock that serialises this profile's enrolment (register) across processes. */
  function profileLockName(): string {
    return `profile.${profileName}`;
  }

  /** True when the faucet accepts `key`; false when it says it is invalid. */
  async function keyIsAlive(key: string): Promise<boolean> {
    try {
      await (await client()).whoami(key);
      return true;
    } catch (error) {
      if (isRekeyError(error, "UNAUTHORIZED")) return false;
      throw error;
    }
  }

  function cooldownRemaining(until: string | undefined): number {
    return secondsUntil(until, clock.now());
  }

  function toResult(
    rotation: CompletedRotation,
    shared: boolean,
    reveal: boolean | undefined,
  ): RotationResult {
    const { record, principal } = rotation;
    return {
      dryRun: false,
      principal,
      label: principalLabel(principal),
      oldFingerprint: record.oldFingerprint,
      newFingerprint: record.newFingerprint,
      rotatedAt: record.rotatedAt,
      cooldownUntil: record.cooldownUntil,
      cooldownMinutes: cooldownMinutes(principal),
      verified: record.verified,
      requestId: record.requestId,
      shared,
      ...(rotation.auditError === undefined ? {} : { auditPending: true }),
      ...(reveal ? { apiKey: rotation.apiKey } : {}),
    };
  }

  /** The record id of a principal (default: the profile's acting one) on this faucet. */
  async function recordIdFor(principal?: Principal): Promise<string> {
    const view = await readView();
    const target = principal ?? (await requireActive(view));
    return recordIdOf(view.faucet, await recordPrincipalIn(view, target));
  }

  return {
    env,
    profileName,
    actAs,
    store,
    surface,
    clock,
    idempotentBases,
    readView,
    snapshotView,
    defaultUrl,
    baseUrlOf,
    baseUrl,
    clientOf,
    client,
    envPrincipal,
    envKey,
    context,
    deliveryJournal,
    deliverRotation,
    resolveLeftovers,
    pendingIn,
    ensureResolved,
    storedActiveIn,
    seededActiveIn,
    activePrincipal,
    requireActive,
    currentKey,
    recordPrincipalIn,
    keyProvider,
    withLock,
    profileLockName,
    keyIsAlive,
    cooldownRemaining,
    toResult,
    recordIdFor,
  };
}

/** Whose the environment's key is: its principal, record principal and operator record. */
interface EnvIdentity {
  principal: Principal;
  seed: string;
  operator: string;
}

/** The parts of one Rekey its operations share. */
export type Session = ReturnType<typeof createSession>;

function normaliseUrl(url: string): string {
  return url.replace(/\/+$/, "");
}
