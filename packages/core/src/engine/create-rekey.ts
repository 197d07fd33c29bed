import { createHash, randomUUID } from "node:crypto";
import {
  createFaucetClient,
  type FaucetClient,
  resolveBaseUrl,
  validateBaseUrl,
} from "../client/index.js";
import { type Clock, systemClock } from "../clock.js";
import {
  type DeliveryOutcome,
  deliverRecord,
  deliveryStatusOf,
} from "../delivery/delivery-journal.js";
import type { DeliveryEnvironment } from "../delivery/delivery-payload.js";
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
import { keyScheduleOf } from "../schedule/policies.js";
import { verifyAuditChain } from "../store/audit-chain.js";
import {
  faucetIdOf,
  idempotencySlot,
  operatorRecordPrincipal,
  RECORD_PRINCIPAL_PATTERN,
  recordIdOf,
  scopePrefix,
} from "../store/record-ids.js";
import { PROFILE_NAME_PATTERN } from "../store/schema.js";
import type {
  AuditEventInput,
  CredentialStore,
  KeySource,
  ReadOptions,
  StoreData,
  StoreHealth,
  StoreSnapshot,
  Surface,
} from "../store/types.js";
import { killPoint } from "../testing/kill-points.js";
import {
  type DeliveryStep,
  type EngineContext,
  type EngineHooks,
  rotationLockName,
} from "./context.js";
import { createDeliveryOperations } from "./deliveries.js";
import { createKeyProvider } from "./key-provider.js";
import {
  activePrincipalOf,
  missingKeyError,
  type ProfileView,
  principalOfRecord,
  profileIn,
  recordIn,
  recordOf,
  recordPrincipalOf,
  recordsOfView,
  type SnapshotView,
  setKey,
  storedKeyOf,
  updateStore,
  updateStoreFrom,
  viewOf,
  writableRecord,
} from "./principal-records.js";
import { readRescueFile, removeRescueFile, rescueDirOf, writeRescueFile } from "./rescue.js";
import {
  audit,
  type CompletedRotation,
  keyLostError,
  outcomeUnknown,
  prepareAudit,
  resolveIntent,
  rotateUnderLock,
} from "./rotation.js";
import { secondsUntil } from "./rotation-checks.js";
import { createSingleFlight } from "./single-flight.js";
import type {
  AgentStatus,
  HealthReport,
  Identity,
  KeyCheck,
  KeyStatus,
  PendingResolution,
  Rekey,
  RotateRequest,
  RotationPlan,
  RotationResult,
} from "./types.js";

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

const IDEMPOTENCY_TTL_MS = 24 * 60 * 60 * 1000;

/**
 * Binds the rotation engine to one store, profile and surface.
 * @throws RekeyError CONFIG_INVALID for a bad profile name or URL.
 */
export function createRekey(options: RekeyOptions): Rekey {
  const env = options.env ?? {};
  const profileName = options.profile ?? "default";
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
  if (explicitUrl !== undefined) validateBaseUrl(explicitUrl);
  const { store, surface } = options;
  const clock = options.clock ?? systemClock;
  const envApiKey = env.REKEY_API_KEY ?? env.LIGHTNING_WALLET_API_KEY;

  const clients = new Map<string, FaucetClient>();
  const rotationFlights = createSingleFlight<CompletedRotation>();
  const idempotencyFlights = createSingleFlight<{
    status: number;
    body: unknown;
    replayed: boolean;
  }>();
  let resolving: Promise<void> | undefined;
  // The snapshot an idempotent run's rotation starts from, by request_id (see withIdempotency).
  const idempotentBases = new Map<string, StoreSnapshot>();
  let envIdentity: Promise<Principal | undefined> | undefined;
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
        { hint: "Use another profile (--profile) for another faucet URL." },
      );
    }
    return profile.baseUrl;
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
   * Which principal the environment's key belongs to (asked once, with whoami); `view` names
   * the faucet to ask, else the store is read for it.
   */
  function envPrincipal(view?: ProfileView): Promise<Principal | undefined> {
    if (envApiKey === undefined || envApiKey === "") return Promise.resolve(undefined);
    envIdentity ??= (async () => {
      const faucetClient = view === undefined ? await client() : clientOf(view);
      const identity = await faucetClient.whoami(envApiKey);
      envOperator = operatorRecordPrincipal(
        identity.type === "operator" ? identity.id : identity.operatorId,
      );
      return identity.type === "operator" ? OPERATOR : agent(identity.id);
    })().catch((error: unknown) => {
      // An unreachable faucet now must not hide the seed for the life of the process.
      envIdentity = undefined;
      throw error;
    });
    return envIdentity;
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
    return storedActiveIn(view) ?? envPrincipal(view);
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
    const stored = storedKeyOf(seen, principal);
    if (stored) return { key: stored.key, fingerprint: stored.fingerprint };
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

  /**
   * Stores a key that did not come from a rotation (registered, logged in, created) in its
   * principal's record, points the profile at it when `point` says so, and audits it.
   */
  async function storeNewKey(input: {
    recordPrincipal: string;
    key: string;
    source: KeySource;
    name?: string | undefined;
    operatorId?: number | undefined;
    action: AuditEventInput["action"];
    /** Changes the draft profile to point at the record; returns false to leave it. */
    point?: (profile: { operator?: string; actsAs?: string }, draft: StoreData) => void;
  }): Promise<string> {
    const fp = fingerprint(input.key);
    const savedAt = new Date(clock.now()).toISOString();
    const url = await baseUrl();
    let previous: string | undefined;
    await updateStore(
      store,
      (draft) => {
        const record = recordIn(draft, url, input.recordPrincipal);
        previous = record.fingerprint;
        setKey(record, { key: input.key, fingerprint: fp, savedAt, source: input.source });
        if (input.name !== undefined) record.name = input.name;
        if (input.operatorId !== undefined) record.operatorId = input.operatorId;
        delete record.alternates;
        if (input.point) input.point(profileIn(draft, profileName, url), draft);
      },
      () => keyProvider.invalidate(),
    );
    await audit(context, {
      principal: input.recordPrincipal,
      action: input.action,
      outcome: "success",
      ...(previous !== undefined && previous !== fp ? { oldFingerprint: previous } : {}),
      newFingerprint: fp,
    });
    return fp;
  }

  /**
   * A registered operator's key the store refused: written to a rescue file with its recovery
   * code (never dropped), and the error says where. A key that did reach the store (the audit
   * append failed after it) needs no rescue: the error is raised as it is.
   */
  async function rescueRegistered(
    reply: { operatorId: number; apiKey: string; recoveryCode: string },
    recordPrincipal: string,
    error: unknown,
  ): Promise<unknown> {
    const fp = fingerprint(reply.apiKey);
    const url = await baseUrl().catch(() => defaultUrl());
    const held = await store.read().then(
      (snapshot) => snapshot.data.principals[recordIdOf(url, recordPrincipal)]?.fingerprint === fp,
      () => false,
    );
    if (held) return error;
    const path = await writeRescueFile(context.rescueDir, {
      faucet: faucetIdOf(url),
      principal: recordPrincipal,
      key: reply.apiKey,
      source: "register",
      savedAt: new Date(clock.now()).toISOString(),
      operatorId: reply.operatorId,
      recoveryCode: reply.recoveryCode,
    }).catch(() => undefined);
    return new RekeyError(
      "STORE_UNAVAILABLE",
      `Operator ${reply.operatorId} was registered (key ${fp}) but the credential store refused its key; ${path === undefined ? "no rescue file could be written either" : `the key and its recovery code were written to ${path}`}`,
      {
        hint:
          path === undefined
            ? "Keep the recovery code: `rekey recover` with it issues a new key once the store is fixed."
            : `Fix the store, then run \`rekey rescue import ${path}\`. The recovery code is in that file too.`,
        details: { principal: "operator", ...(path === undefined ? {} : { rescueFile: path }) },
        cause: error,
      },
    );
  }

  /**
   * The error for a key the faucet rejects: when the store knows it as the old key of one of
   * its rotations, it names that rotation and the key that replaced it.
   */
  async function staleKeyError(key: string, cause: RekeyError): Promise<RekeyError> {
    const fp = fingerprint(key);
    const view = await readView();
    const replaced = Object.values(view.data.principals).find(
      (record) => record.faucet === view.faucet && record.lastRotation?.oldFingerprint === fp,
    );
    if (replaced?.lastRotation === undefined) return cause;
    const label = principalLabel(principalOfRecord(replaced.principal));
    return new RekeyError(
      "UNAUTHORIZED",
      `The key ${fp} no longer works: the ${label} was rotated at ${replaced.lastRotation.rotatedAt}, and the store holds its current key ${replaced.fingerprint ?? "(none)"}`,
      {
        hint: `Nothing was stored. Act as it with --as ${replaced.principal} instead of logging in a copy.`,
        details: { principal: label },
        cause,
      },
    );
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

  async function rotateKey(request: RotateRequest = {}): Promise<RotationResult | RotationPlan> {
    // The key as the caller saw it, read before waiting on anything: if another process's
    // rotation finishes while this call waits (for its lock, or to resolve its intent), this
    // call returns that rotation instead of rotating a second time (checked under the lock).
    const seen =
      request.requestId === undefined ? undefined : idempotentBases.get(request.requestId);
    const first = seen === undefined ? await readView() : snapshotView(seen);
    const seenTarget = request.target ?? activePrincipalOf(first);
    const seenFingerprint = seenTarget ? storedKeyOf(first, seenTarget)?.fingerprint : undefined;
    const resolvedNothing = pendingIn(first).length === 0;
    await ensureResolved(first);
    const view = resolvedNothing ? first : await readView();
    const actor = request.actor ?? (await requireActive(view));
    const target = request.target ?? actor;
    if (actor.kind === "agent" && !samePrincipal(actor, target)) {
      throw new RekeyError(
        "FORBIDDEN",
        `An agent can rotate only its own key, not the ${principalLabel(target)}'s`,
        {
          hint: "Omit agent_id to rotate your own key; an operator rotates its agents' keys.",
          details: { principal: principalLabel(target) },
        },
      );
    }
    const actorKey = await currentKey(actor, view);
    const actorRecord = await recordPrincipalIn(view, actor);
    const targetRecord = await recordPrincipalIn(view, target);
    const targetStored = storedKeyOf(view, target);
    const targetFingerprint =
      targetStored?.fingerprint ??
      (samePrincipal(actor, target) ? actorKey.fingerprint : undefined);
    const expectedFingerprint =
      request.expectedFingerprint ??
      (seenTarget && seenFingerprint && samePrincipal(seenTarget, target)
        ? seenFingerprint
        : targetFingerprint);
    if (request.dryRun) {
      const cooldownSource = recordOf(view, target)?.cooldownUntil;
      const currentCooldown =
        secondsUntil(cooldownSource, clock.now()) > 0 ? cooldownSource : undefined;
      const minutes = cooldownMinutes(target);
      return {
        dryRun: true,
        principal: target,
        label: principalLabel(target),
        currentFingerprint: targetFingerprint ?? "none",
        action:
          target.kind === "agent" && !samePrincipal(actor, target)
            ? "regenerate_agent_key"
            : "regenerate_operator_key",
        cooldownMinutes: minutes,
        cooldownWouldEndAt: new Date(clock.now() + minutes * 60_000).toISOString(),
        currentCooldownUntil: currentCooldown,
        blockedByCooldown: currentCooldown !== undefined && !request.force,
      };
    }
    const flightKey = recordIdOf(view.faucet, targetRecord);
    const inFlight = rotationFlights.running(flightKey);
    if (inFlight) return toResult(await inFlight, true, request.reveal);
    // The journal entry written before the upstream call doubles as the writability preflight:
    // a store that cannot take it stops the rotation before the faucet is asked. The cooldown
    // and "rotated meanwhile" are checked under the lock, on the store as it is then.
    const rotation = await rotationFlights.run(flightKey, () =>
      rotateUnderLock(context, {
        view,
        target,
        actor,
        targetRecord,
        actorRecord,
        expectedFingerprint,
        requestId: request.requestId,
        force: request.force,
        signal: request.signal,
      }),
    );
    const result = toResult(rotation, rotation.shared, request.reveal);
    // After commit and verify: the rotation stands whatever its deliveries do.
    const deliveries = rotation.shared
      ? undefined
      : await deliverRotation(flightKey, rotation.snapshot);
    return deliveries === undefined ? result : { ...result, deliveries };
  }

  /** The record id of a principal (default: the profile's acting one) on this faucet. */
  async function recordIdFor(principal?: Principal): Promise<string> {
    const view = await readView();
    const target = principal ?? (await requireActive(view));
    return recordIdOf(view.faucet, await recordPrincipalIn(view, target));
  }

  const rekey: Rekey = {
    profileName,
    surface,
    baseUrl,
    activePrincipal,
    ...createDeliveryOperations(deliveryJournal, recordIdFor),

    async register(input) {
      // The faucet creates the account and shows its recovery code once: the store must be
      // able to take the key before the faucet is asked.
      await store.checkWritable();
      await prepareAudit(context);
      // Under the profile's lock, so that of two registrations racing in one profile (two
      // processes) only one asks the faucet: the other would be refused below.
      return withLock(profileLockName(), async () => {
        const view = await readView();
        const acting = activePrincipalOf(view);
        if (acting && storedKeyOf(view, acting)) {
          throw new RekeyError(
            "CONFIG_INVALID",
            `Profile "${profileName}" already acts as the ${principalLabel(acting)} (${view.actsAs})`,
            { hint: "Use another profile (--profile NAME) for a second operator." },
          );
        }
        const reply = await (await client()).register({
          ...(input.name === undefined ? {} : { name: input.name }),
          ...(input.email === undefined ? {} : { email: input.email }),
        });
        // The account exists upstream from here: its recovery code is kept first.
        await input.onRecoveryCode?.(reply.recoveryCode);
        killPoint("register.upstream-replied");
        const recordPrincipal = operatorRecordPrincipal(reply.operatorId);
        let fp: string;
        try {
          fp = await storeNewKey({
            recordPrincipal,
            key: reply.apiKey,
            source: "register",
            name: input.name,
            operatorId: reply.operatorId,
            action: "register",
            point: (profile) => {
              profile.operator = recordPrincipal;
              delete profile.actsAs;
            },
          });
        } catch (error) {
          throw await rescueRegistered(reply, recordPrincipal, error);
        }
        killPoint("register.key-stored");
        return { operatorId: reply.operatorId, fingerprint: fp, recoveryCode: reply.recoveryCode };
      });
    },

    async login(apiKey, loginOptions = {}) {
      const key = apiKey.trim();
      if (!/^\S{8,512}$/.test(key)) {
        throw new RekeyError("INVALID_INPUT", "That does not look like an API key", {
          hint: "Paste the whole key (no spaces); faucet keys start with lf_.",
        });
      }
      const identity: Identity = await (await client())
        .whoami(key)
        .catch(async (error: unknown) => {
          throw isRekeyError(error, "UNAUTHORIZED") ? await staleKeyError(key, error) : error;
        });
      const principal = identity.type === "operator" ? OPERATOR : agent(identity.id);
      const recordPrincipal =
        identity.type === "operator" ? `operator:${identity.id}` : `agent:${identity.id}`;
      const operatorId = identity.type === "operator" ? identity.id : identity.operatorId;
      const faucet = (await readView()).faucet;
      const fp = fingerprint(key);
      // Under the principal's rotation lock: a rotation in flight elsewhere finishes first,
      // and the key is checked again after it, so a key that rotation killed is never stored.
      return withLock(rotationLockName(recordIdOf(faucet, recordPrincipal)), async () => {
        const view = await readView();
        const existing = view.data.principals[recordIdOf(faucet, recordPrincipal)];
        let action: AuditEventInput["action"] =
          loginOptions.source === "import" ? "import" : "login";
        // Checked again under the lock: a rotation that finished while we waited killed it.
        if (!(await keyIsAlive(key))) {
          throw await staleKeyError(
            key,
            new RekeyError(
              "UNAUTHORIZED",
              `The key ${fp} stopped working while it was being stored (a rotation elsewhere?)`,
              { hint: "Nothing was stored. Use the key that rotation issued." },
            ),
          );
        }
        if (existing?.key !== undefined && existing.key !== key) {
          // Someone rotated elsewhere and this is the new key: adopt it only if the stored one
          // is dead, so a working key is never replaced.
          if (await keyIsAlive(existing.key)) {
            throw new RekeyError(
              "CONFIG_INVALID",
              `The store holds another working key for the ${principalLabel(principal)} (${recordPrincipal}): ${existing.fingerprint}; the key given (${fp}) was not stored`,
              {
                hint: "If you meant to replace the stored key, forget it first (`rekey forget`).",
                details: { principal: principalLabel(principal) },
              },
            );
          }
          action = "adopt";
        }
        let pointed = true;
        let repointedFrom: string | undefined;
        const stored = await storeNewKey({
          recordPrincipal,
          key,
          source: loginOptions.source ?? "login",
          name: identity.name,
          operatorId,
          action,
          point: (profile, draft) => {
            pointed = true;
            repointedFrom = undefined;
            const replace = loginOptions.replace === true;
            if (identity.type === "operator") {
              // A profile acting as an agent takes that agent's own operator only.
              const actingAgent =
                profile.operator === undefined && profile.actsAs?.startsWith("agent:")
                  ? draft.principals[recordIdOf(faucet, profile.actsAs)]
                  : undefined;
              const foreign = actingAgent !== undefined && actingAgent.operatorId !== identity.id;
              if (foreign && !replace) {
                pointed = false;
                return;
              }
              if (profile.operator === undefined || profile.operator === recordPrincipal) {
                profile.operator = recordPrincipal;
                // Acting as one of its agents stays so unless the caller switches back.
                if (replace) delete profile.actsAs;
                return;
              }
              if (replace) {
                repointedFrom = profile.operator;
                profile.operator = recordPrincipal;
                delete profile.actsAs;
                return;
              }
              pointed = false;
              return;
            }
            // An agent: act as it in an empty profile (or when asked); otherwise keep it as
            // one of the profile operator's agents, or beside them when it belongs to another.
            const ownOperator =
              operatorId === undefined ? undefined : operatorRecordPrincipal(operatorId);
            const empty = profile.operator === undefined && profile.actsAs === undefined;
            const belongs = profile.operator !== undefined && profile.operator === ownOperator;
            if (empty) {
              profile.actsAs = recordPrincipal;
              return;
            }
            // `--replace` asks to act as this agent, as `makeActive` does.
            if (loginOptions.makeActive === true || replace) {
              const free = profile.actsAs === undefined || profile.actsAs === recordPrincipal;
              if (replace || (belongs && free)) {
                if (profile.actsAs !== undefined && profile.actsAs !== recordPrincipal)
                  repointedFrom = profile.actsAs;
                profile.actsAs = recordPrincipal;
                if (!belongs) {
                  if (profile.operator !== undefined) repointedFrom ??= profile.operator;
                  delete profile.operator;
                }
                return;
              }
              pointed = false;
              return;
            }
            pointed = belongs || profile.actsAs === recordPrincipal;
          },
        });
        if (repointedFrom !== undefined) {
          await audit(context, {
            principal: recordPrincipal,
            action: "repoint",
            outcome: "success",
            newFingerprint: stored,
          });
        }
        if (
          !pointed &&
          (identity.type === "operator" ||
            loginOptions.makeActive === true ||
            loginOptions.replace === true)
        ) {
          const acting = (await readView()).actsAs ?? "nothing";
          throw new RekeyError(
            "CONFIG_INVALID",
            `The key (${stored}) is stored as the ${principalLabel(principal)} (${recordPrincipal}), but profile "${profileName}" still acts as ${acting}`,
            {
              hint: `Nothing was replaced. Switch the profile with \`rekey login --replace\` (the other record is kept), use another profile (--profile NAME), or act as it with --as ${recordPrincipal}.`,
              details: { principal: principalLabel(principal), storedAs: recordPrincipal },
            },
          );
        }
        return {
          principal,
          identity,
          fingerprint: stored,
          recordPrincipal,
          inProfile: pointed,
        };
      });
    },

    async createAgent(input) {
      const view = await readView();
      await ensureResolved(view);
      const operatorKey = (await currentKey(OPERATOR, view)).key;
      const operatorRecord = await recordPrincipalIn(view, OPERATOR);
      // The agent's key exists only in the faucet's reply: make sure it can be stored.
      await store.checkWritable();
      const reply = await (await client()).createAgent(operatorKey, input);
      const fp = await storeNewKey({
        recordPrincipal: `agent:${reply.agentId}`,
        key: reply.apiKey,
        source: "create",
        name: reply.name,
        operatorId: Number(operatorRecord.slice("operator:".length)) || undefined,
        action: "create_agent",
        point: (profile) => {
          profile.operator ??= operatorRecord;
        },
      });
      return { agentId: reply.agentId, name: reply.name, fingerprint: fp };
    },

    async recover(recoveryCode) {
      const code = recoveryCode.trim();
      if (code.length === 0 || code.length > 512) {
        throw new RekeyError("INVALID_INPUT", "The recovery code is empty or too long", {
          hint: "Paste the recovery code you were given at registration.",
        });
      }
      const before = await readView();
      const lockName =
        before.operator === undefined
          ? profileLockName()
          : rotationLockName(recordIdOf(before.faucet, before.operator));
      // Under the operator's rotation lock: a rotation finishing after the recovery would
      // store its key, which the recovery has just invalidated.
      const result = await withLock(lockName, async (): Promise<RotationResult> => {
        const view = await readView();
        const old = storedKeyOf(view, OPERATOR);
        // Recovery invalidates the operator's key: the store must be able to take the new one,
        // and the audit log its entry.
        await store.checkWritable();
        await prepareAudit(context);
        // Journaled like a rotation: the faucet invalidates the old key, so a process killed
        // before the new one is stored leaves an intent that the next run resolves (into a
        // loud KEY_LOST with the way back, the recovery code), never a dead key said nothing of.
        const journal =
          view.operator !== undefined && old !== undefined && !recordOf(view, OPERATOR)?.intent
            ? {
                requestId: randomUUID(),
                principal: view.operator,
                actor: view.operator,
                oldFingerprint: old.fingerprint,
                startedAt: new Date(clock.now()).toISOString(),
                phase: "requested" as const,
                surface,
              }
            : undefined;
        if (journal) {
          await updateStore(store, (draft) => {
            const stored = writableRecord(draft, view.faucet, journal.principal);
            if (stored) stored.intent = { ...journal };
          });
        }
        const reply = await (await client()).recover(code, {});
        killPoint("recover.upstream-replied");
        const recordPrincipal = operatorRecordPrincipal(reply.operatorId);
        const now = new Date(clock.now()).toISOString();
        const record = {
          requestId: "recover",
          oldFingerprint: view.operator === recordPrincipal ? (old?.fingerprint ?? "none") : "none",
          newFingerprint: fingerprint(reply.apiKey),
          rotatedAt: now,
          cooldownUntil:
            reply.cooldownUntil ??
            new Date(clock.now() + cooldownMinutes(OPERATOR) * 60_000).toISOString(),
          verified: false,
          surface,
        };
        const url = await baseUrl();
        await updateStore(
          store,
          (draft) => {
            const stored = recordIn(draft, url, recordPrincipal);
            setKey(stored, {
              key: reply.apiKey,
              fingerprint: record.newFingerprint,
              savedAt: now,
              source: "recover",
            });
            stored.operatorId = reply.operatorId;
            stored.lastRotation = record;
            stored.cooldownUntil = record.cooldownUntil;
            if (journal) {
              // Kept (phase stored) until the audit entry is written; another account's
              // recovery leaves the old record's journal to be resolved on its own.
              const journaled = writableRecord(draft, url, journal.principal);
              if (journaled?.intent?.requestId === journal.requestId) {
                if (journal.principal === recordPrincipal) journaled.intent.phase = "stored";
              }
            }
            const profile = profileIn(draft, profileName, url);
            const pointed =
              profile.operator === undefined
                ? undefined
                : draft.principals[recordIdOf(url, profile.operator)];
            // The profile follows the recovered account when it had none, or only a lost key.
            if (pointed?.key === undefined) profile.operator = recordPrincipal;
          },
          () => keyProvider.invalidate(),
        );
        killPoint("recover.key-stored");
        let verified = false;
        try {
          verified = (await (await client()).whoami(reply.apiKey)).type === "operator";
        } catch {
          verified = false;
        }
        if (verified) {
          await updateStore(store, (draft) => {
            const stored = writableRecord(draft, url, recordPrincipal);
            if (stored?.lastRotation?.requestId === "recover") stored.lastRotation.verified = true;
          });
        }
        await audit(context, {
          principal: recordPrincipal,
          action: "recover",
          outcome: "success",
          oldFingerprint: record.oldFingerprint,
          newFingerprint: record.newFingerprint,
          cooldownUntil: record.cooldownUntil,
          ...(journal === undefined ? {} : { requestId: journal.requestId }),
        });
        killPoint("recover.audited");
        if (journal) {
          await updateStore(store, (draft) => {
            const journaled = writableRecord(draft, url, journal.principal);
            if (
              journaled?.intent?.requestId === journal.requestId &&
              journaled.intent.phase === "stored"
            )
              delete journaled.intent;
          });
        }
        return toResult(
          {
            principal: OPERATOR,
            record: { ...record, verified },
            apiKey: reply.apiKey,
            shared: false,
          },
          false,
          false,
        );
      });
      // A recovered key reaches the targets too: the old one is dead.
      const deliveries = await recordIdFor(OPERATOR).then(deliverRotation, () => undefined);
      return deliveries === undefined ? result : { ...result, deliveries };
    },

    async whoami(principal) {
      await ensureResolved(await readView());
      const target = principal ?? (await requireActive());
      const identity = await keyProvider.withKey(target, async (key) =>
        (await client()).whoami(key),
      );
      const key = await keyProvider.current(target);
      return { ...identity, fingerprint: key.fingerprint };
    },

    async status(principal, options = {}) {
      // One read serves the whole status unless an unfinished rotation must be resolved first.
      let view = await readView({ maxAgeMs: options.maxAgeMs });
      if (pendingIn(view).length > 0) {
        const resolveError = await ensureResolved(view).then(
          () => undefined,
          (error: unknown) => error,
        );
        // A lost key is reported where it is found; an unreachable faucet leaves the intent
        // to be shown as an unfinished rotation.
        if (isRekeyError(resolveError, "KEY_LOST")) throw resolveError;
        view = await readView();
      }
      // No await when the store answers: status endpoints call this on every poll.
      const actor = storedActiveIn(view) ?? (await envPrincipal());
      const target = principal ?? actor ?? activePrincipalOf(view) ?? OPERATOR;
      // An agent session sees its own status only, as with rotateKey.
      if (actor?.kind === "agent" && !samePrincipal(actor, target)) {
        throw new RekeyError(
          "FORBIDDEN",
          `An agent can read only its own status, not the ${principalLabel(target)}'s`,
          { details: { principal: principalLabel(target) } },
        );
      }
      const record = recordOf(view, target);
      const stored = storedKeyOf(view, target);
      const seeded = stored ? undefined : await envKey(target);
      if (!view.profile && record === undefined && seeded === undefined) {
        throw new RekeyError(
          "NOT_FOUND",
          actAs === undefined
            ? `Profile "${profileName}" does not exist in ${store.location}`
            : `No record of ${actAs} on ${view.faucet}`,
          {
            hint: "Run `rekey register` or `rekey login` (or `rekey profiles list` to see what exists).",
            details: { principal: principalLabel(target), missing: "profile" },
          },
        );
      }
      if (principal?.kind === "agent" && record === undefined && seeded === undefined) {
        throw new RekeyError(
          "NOT_FOUND",
          `No record of the ${principalLabel(principal)} in profile "${profileName}"`,
          {
            hint: "Create it with `rekey agents create`, or rotate its key as its operator to store one.",
            details: { principal: principalLabel(principal) },
          },
        );
      }
      const intent = record?.intent;
      const cooldownUntil = record?.cooldownUntil;
      const remaining = cooldownRemaining(cooldownUntil);
      return {
        principal: target,
        label: principalLabel(target),
        profile: profileName,
        baseUrl: baseUrlOf(view.profile),
        hasKey: stored !== undefined || seeded !== undefined,
        keySource: stored ? "store" : seeded !== undefined ? "env" : undefined,
        fingerprint:
          stored?.fingerprint ?? (seeded === undefined ? undefined : fingerprint(seeded)),
        name: record?.name,
        savedAt: stored?.savedAt,
        keyAgeSeconds: stored
          ? Math.max(0, Math.floor((clock.now() - Date.parse(stored.savedAt)) / 1000))
          : undefined,
        lastRotation: record?.lastRotation,
        cooldownUntil: remaining > 0 ? cooldownUntil : undefined,
        cooldownRemainingSeconds: remaining,
        pendingRotation: intent
          ? { requestId: intent.requestId, startedAt: intent.startedAt, phase: intent.phase }
          : undefined,
        keyLost:
          record?.keyLost && stored === undefined
            ? {
                requestId: record.keyLost.requestId,
                oldFingerprint: record.keyLost.oldFingerprint,
                lostAt: record.keyLost.lostAt,
                recovery: record.keyLost.recovery,
              }
            : undefined,
        deliveries: record?.deliveries ? deliveryStatusOf(record) : undefined,
        store: { kind: store.kind, location: store.location },
        schedule: record === undefined ? undefined : keyScheduleOf(record, clock.now()),
      } satisfies KeyStatus;
    },

    async listAgents() {
      await ensureResolved(await readView());
      const agents = await keyProvider.withKey(OPERATOR, async (key) =>
        (await client()).listAgents(key),
      );
      const view = await readView();
      return agents.map((listed): AgentStatus => {
        const record = recordOf(view, agent(listed.id));
        const remaining = cooldownRemaining(record?.cooldownUntil);
        return {
          id: listed.id,
          name: listed.name,
          balanceSats: listed.balanceSats,
          isActive: listed.isActive,
          hasKey: record?.key !== undefined,
          fingerprint: record?.fingerprint,
          cooldownUntil: remaining > 0 ? record?.cooldownUntil : undefined,
          cooldownRemainingSeconds: remaining,
          lastRotatedAt: record?.lastRotation?.rotatedAt,
        };
      });
    },

    async checkKeys() {
      const view = await readView();
      const checks: KeyCheck[] = [];
      for (const record of recordsOfView(view)) {
        const candidates = [
          ...(record.key === undefined
            ? []
            : [{ fingerprint: record.fingerprint as string, key: record.key, current: true }]),
          ...(record.alternates ?? []).map((alternate) => ({
            fingerprint: alternate.fingerprint,
            key: alternate.key,
            current: false,
          })),
        ];
        for (const candidate of candidates) {
          let alive: boolean | undefined;
          let error: string | undefined;
          try {
            alive = await keyIsAlive(candidate.key);
          } catch (cause) {
            error = toMessage(cause);
          }
          checks.push({
            principal: record.principal,
            label: principalLabel(principalOfRecord(record.principal)),
            fingerprint: candidate.fingerprint,
            current: candidate.current,
            ...(alive === undefined ? {} : { alive }),
            ...(error === undefined ? {} : { error }),
          });
        }
      }
      return checks;
    },

    async settleAlternates() {
      const view = await readView();
      const settled: KeyCheck[] = [];
      for (const record of recordsOfView(view)) {
        if (!record.alternates?.length) continue;
        const id = recordIdOf(view.faucet, record.principal);
        await withLock(rotationLockName(id), async () => {
          const fresh = (await store.read()).data.principals[id];
          if (!fresh?.alternates?.length) return;
          const currentAlive = fresh.key === undefined ? false : await keyIsAlive(fresh.key);
          const alive: (typeof fresh.alternates)[number][] = [];
          for (const alternate of fresh.alternates) {
            if (await keyIsAlive(alternate.key)) alive.push(alternate);
          }
          const adopt = currentAlive ? undefined : alive[0];
          await updateStore(
            store,
            (draft) => {
              const target = writableRecord(draft, fresh.faucet, fresh.principal);
              if (!target) return;
              if (adopt) setKey(target, adopt);
              delete target.alternates;
            },
            () => keyProvider.invalidate(),
          );
          for (const alternate of fresh.alternates) {
            const adopted = alternate === adopt;
            await audit(context, {
              principal: fresh.principal,
              action: adopted ? "adopt" : "forget",
              outcome: "success",
              ...(adopted
                ? { oldFingerprint: fresh.fingerprint, newFingerprint: alternate.fingerprint }
                : { oldFingerprint: alternate.fingerprint }),
            });
            settled.push({
              principal: fresh.principal,
              label: principalLabel(principalOfRecord(fresh.principal)),
              fingerprint: alternate.fingerprint,
              current: adopted,
              alive: alive.includes(alternate),
            });
          }
        });
      }
      return settled;
    },

    async forget(recordPrincipal, forgetOptions = {}) {
      if (!RECORD_PRINCIPAL_PATTERN.test(recordPrincipal)) {
        throw new RekeyError(
          "INVALID_INPUT",
          `Invalid principal ${JSON.stringify(recordPrincipal.slice(0, 40))}`,
          {
            hint: "Use agent:ID or operator:ID, as `rekey profiles show` lists them.",
          },
        );
      }
      const faucet = (await readView()).faucet;
      const id = recordIdOf(faucet, recordPrincipal);
      return withLock(rotationLockName(id), async () => {
        const data = (await store.read()).data;
        const record = data.principals[id];
        if (!record) {
          throw new RekeyError("NOT_FOUND", `No record of ${recordPrincipal} on ${faucet}`);
        }
        if (record.intent) {
          throw new RekeyError(
            "ROTATION_IN_PROGRESS",
            `${recordPrincipal} has an unfinished rotation: it cannot be forgotten now`,
            { hint: "Resolve it first (`rekey doctor --repair`)." },
          );
        }
        const users = Object.entries(data.profiles)
          .filter(
            ([, profile]) =>
              faucetIdOf(profile.baseUrl) === faucet &&
              (profile.operator === recordPrincipal || profile.actsAs === recordPrincipal),
          )
          .map(([name]) => name);
        if (users.length > 0) {
          throw new RekeyError(
            "CONFIG_INVALID",
            `${recordPrincipal} is used by profile${users.length > 1 ? "s" : ""} ${users.map((name) => `"${name}"`).join(", ")}`,
            { hint: "Remove or repoint those profiles first (`rekey profiles remove NAME`)." },
          );
        }
        // Confirmed, a faucet that cannot be asked (down, or a mistyped URL) does not stop it.
        const alive =
          record.key === undefined
            ? false
            : await keyIsAlive(record.key).catch((error: unknown) => {
                if (forgetOptions.confirmLive === true) return true;
                throw error;
              });
        if (alive && forgetOptions.confirmLive !== true) {
          throw new RekeyError(
            "CONFIG_INVALID",
            `The faucet still accepts the key of ${recordPrincipal} (${record.fingerprint}): forgetting it leaves rekey without it`,
            {
              hint: "Confirm (--yes) only if you hold this key elsewhere.",
              details: { needsConfirmation: true },
            },
          );
        }
        await updateStore(
          store,
          (draft) => {
            delete draft.principals[id];
          },
          () => keyProvider.invalidate(),
        );
        await audit(context, {
          principal: recordPrincipal,
          action: "forget",
          outcome: "success",
          ...(record.fingerprint === undefined ? {} : { oldFingerprint: record.fingerprint }),
        });
        return { principal: recordPrincipal, fingerprint: record.fingerprint, wasAlive: alive };
      });
    },

    rotateKey: rotateKey as Rekey["rotateKey"],

    async withIdempotency(idempotencyKey, requestHash, run, options = {}) {
      if (!/^[\x21-\x7e]{1,255}$/.test(idempotencyKey)) {
        throw new RekeyError(
          "INVALID_INPUT",
          "The idempotency key must be 1 to 255 visible ASCII characters",
        );
      }
      const requestDigest = createHash("sha256").update(requestHash).digest("hex");
      // Same key, same request, while it runs in this process: one lock, one answer. The key is
      // known before any await, so concurrent callers find each other (this Rekey is bound to
      // one profile and principal, which scope the slot). Another request under the same key
      // queues on the lock, then is refused by the replay.
      const flightKey = createHash("sha256")
        .update(`${options.scope ?? ""}\n${idempotencyKey}\n${requestDigest}`)
        .digest("hex");
      const running = idempotencyFlights.running(flightKey);
      if (running) return { ...(await running), replayed: true } as never;
      const work = idempotencyFlights.run(flightKey, async () => {
        const view = await readView();
        // The principal acting owns the slot; a caller's scope (a bearer token's name) gets
        // slots of its own within it, so another caller's key never lands in them.
        const principalScope =
          view.actsAs === undefined
            ? `profile:${profileName}`
            : recordIdOf(view.faucet, view.actsAs);
        const scope =
          options.scope === undefined ? principalScope : `${principalScope}\n${options.scope}`;
        const slot = idempotencySlot(scope, idempotencyKey);
        const replay = (snapshot: StoreSnapshot) => {
          const record = snapshot.data.idempotency[slot];
          if (!record || Date.parse(record.expiresAt) <= clock.now()) return undefined;
          if (record.requestHash !== requestDigest) {
            throw new RekeyError(
              "IDEMPOTENCY_KEY_REUSED",
              "This idempotency key was already used with a different request",
              {
                hint: "Use a new idempotency key for a different request.",
              },
            );
          }
          // Pending: a run that never finished (a crash); it runs again with its request_id.
          if (record.pendingRequestId !== undefined) return undefined;
          return { status: record.status, body: record.body as never, replayed: true };
        };
        // The view's snapshot answers a replay without taking the lock.
        const first = replay(view.snapshot);
        if (first) return first;
        const lock = await store.lock(`idempotency.${slot}`, {
          leaseMs: context.lockLeaseMs,
          waitMs: context.lockWaitMs,
        });
        try {
          const locked = await store.read();
          const again = replay(locked);
          if (again) return again;
          // Recorded as pending before anything runs: a retry after a crash finds the
          // request_id and asks for that rotation again, which returns it once journaled.
          const pending = locked.data.idempotency[slot];
          const requestId =
            pending?.requestHash === requestDigest && pending.pendingRequestId !== undefined
              ? pending.pendingRequestId
              : randomUUID();
          let base = locked;
          if (pending?.pendingRequestId !== requestId) {
            const startedAt = clock.now();
            ({ snapshot: base } = await updateStoreFrom(store, locked, (draft) => {
              draft.idempotency[slot] = {
                requestHash: requestDigest,
                createdAt: new Date(startedAt).toISOString(),
                expiresAt: new Date(startedAt + IDEMPOTENCY_TTL_MS).toISOString(),
                status: 202,
                body: null,
                pendingRequestId: requestId,
              };
            }));
          }
          let outcome: { status: number; body: unknown };
          // The run's rotation starts from the snapshot just read and written under this lock,
          // as its caller saw the store, instead of reading it again.
          idempotentBases.set(requestId, base);
          try {
            outcome = await run({ requestId });
          } catch (error) {
            // A definite failure frees the key for a retry; the pending record stays while
            // the outcome is unknown, so the retry asks for the same rotation.
            if (outcomeUnknown(error)) throw error;
            await updateStore(store, (draft) => {
              if (draft.idempotency[slot]?.pendingRequestId === requestId)
                delete draft.idempotency[slot];
            }).catch(() => {});
            throw error;
          } finally {
            idempotentBases.delete(requestId);
          }
          const now = clock.now();
          await updateStore(store, (draft) => {
            for (const [key, record] of Object.entries(draft.idempotency)) {
              if (Date.parse(record.expiresAt) <= now) delete draft.idempotency[key];
            }
            if (options.scope !== undefined && options.maxRecords !== undefined) {
              // The scope's oldest records make room: a caller can only crowd out itself.
              const prefix = scopePrefix(scope);
              const own = Object.entries(draft.idempotency)
                .filter(([key]) => key.startsWith(prefix) && key !== slot)
                .sort(([, a], [, b]) => a.createdAt.localeCompare(b.createdAt));
              for (const [key] of own.slice(0, Math.max(0, own.length - options.maxRecords + 1))) {
                delete draft.idempotency[key];
              }
            }
            draft.idempotency[slot] = {
              requestHash: requestDigest,
              createdAt: new Date(now).toISOString(),
              expiresAt: new Date(now + IDEMPOTENCY_TTL_MS).toISOString(),
              status: outcome.status,
              body: outcome.body,
            };
          });
          return { ...outcome, replayed: false };
        } finally {
          await lock.release();
        }
      });
      return (await work) as never;
    },

    async resolvePending() {
      // doctor --repair: a torn audit tail is moved aside (and audited) first.
      await prepareAudit(context);
      return resolveLeftovers();
    },

    async acknowledgeKeyLost(principal) {
      const view = await readView();
      const target = principal ?? activePrincipalOf(view) ?? OPERATOR;
      const recordPrincipal = recordPrincipalOf(view, target);
      const lost = recordOf(view, target)?.keyLost;
      if (recordPrincipal === undefined || !lost) {
        throw new RekeyError(
          "NOT_FOUND",
          `No lost key is recorded for the ${principalLabel(target)}`,
          {
            details: { principal: principalLabel(target) },
          },
        );
      }
      return withLock(rotationLockName(recordIdOf(view.faucet, recordPrincipal)), async () => {
        // The loss stays in the audit log; the record goes once its entry is written.
        await prepareAudit(context);
        if (!lost.audited) await resolveLeftovers();
        await audit(context, {
          principal: recordPrincipal,
          action: "acknowledge",
          outcome: "key_lost",
          oldFingerprint: lost.oldFingerprint,
          requestId: lost.requestId,
          errorCode: "KEY_LOST",
        });
        await updateStore(store, (draft) => {
          const record = writableRecord(draft, view.faucet, recordPrincipal);
          if (record?.keyLost?.requestId === lost.requestId) delete record.keyLost;
        });
        return { requestId: lost.requestId, label: principalLabel(target) };
      });
    },

    async importRescue(path) {
      const file = await readRescueFile(path);
      const view = await readView();
      if (file.faucet !== view.faucet) {
        throw new RekeyError(
          "CONFIG_INVALID",
          `The rescue file holds a key for ${file.faucet}, not this profile's faucet ${view.faucet}`,
          { hint: "Import it with the profile of that faucet (--profile)." },
        );
      }
      const target = principalOfRecord(file.principal);
      await withLock(rotationLockName(recordIdOf(view.faucet, file.principal)), async () => {
        await store.checkWritable();
        await prepareAudit(context);
        await updateStore(
          store,
          (draft) => {
            const record = recordIn(draft, view.faucet, file.principal);
            setKey(record, {
              key: file.key,
              fingerprint: file.fingerprint,
              savedAt: file.savedAt,
              source: file.source,
            });
            if (file.operatorId !== undefined) record.operatorId = file.operatorId;
            if (file.lastRotation) {
              record.lastRotation = file.lastRotation;
              record.cooldownUntil = file.lastRotation.cooldownUntil;
            }
            // The journaled rotation this key came from is finished by it.
            if (file.requestId !== undefined && record.intent?.requestId === file.requestId)
              delete record.intent;
            const profile = profileIn(draft, profileName, view.profile?.baseUrl ?? defaultUrl());
            if (file.source === "register" && profile.operator === undefined)
              profile.operator = file.principal;
          },
          () => keyProvider.invalidate(),
        );
        await audit(context, {
          principal: file.principal,
          action: "import",
          outcome: "success",
          newFingerprint: file.fingerprint,
          ...(file.requestId === undefined ? {} : { requestId: file.requestId }),
          ...(file.lastRotation === undefined
            ? {}
            : { cooldownUntil: file.lastRotation.cooldownUntil }),
        });
      });
      await removeRescueFile(path);
      return { label: principalLabel(target), fingerprint: file.fingerprint };
    },

    async withdraw(input) {
      await ensureResolved(await readView());
      const principal = input.principal ?? (await requireActive());
      return keyProvider.withKey(principal, async (key) =>
        (await client()).withdraw(key, {
          ...(input.amountSats === undefined ? {} : { amountSats: input.amountSats }),
          ...(input.invoice === undefined ? {} : { invoice: input.invoice }),
        }),
      );
    },

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

    keyProvider,

    async close() {
      keyProvider.close();
    },
  };
  return rekey;
}

function normaliseUrl(url: string): string {
  return url.replace(/\/+$/, "");
}

function toMessage(error: unknown): string {
  return isRekeyError(error) ? `${error.code}: ${error.message}` : "unexpected error";
}
