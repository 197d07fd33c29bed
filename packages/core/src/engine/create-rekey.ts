import { createHash } from "node:crypto";
import {
  createFaucetClient,
  type FaucetClient,
  resolveBaseUrl,
  validateBaseUrl,
} from "../client/index.js";
import { type Clock, systemClock } from "../clock.js";
import { isRekeyError, RekeyError } from "../errors.js";
import { fingerprint } from "../fingerprint.js";
import {
  agent,
  cooldownMinutes,
  OPERATOR,
  type Principal,
  parsePrincipalKey,
  principalKey,
  principalLabel,
  samePrincipal,
} from "../principal.js";
import { verifyAuditChain } from "../store/audit-chain.js";
import { PROFILE_NAME_PATTERN } from "../store/schema.js";
import type {
  AuditEventInput,
  CredentialStore,
  Profile,
  ReadOptions,
  StoreData,
  StoredKey,
  Surface,
} from "../store/types.js";
import { type EngineContext, type EngineHooks, rotationLockName } from "./context.js";
import { createKeyProvider } from "./key-provider.js";
import { audit, type CompletedRotation, resolveIntent, rotateUnderLock } from "./rotation.js";
import {
  missingKeyError,
  profileIn,
  setStoredKey,
  storedKeyOf,
  updateStore,
} from "./store-data.js";
import type {
  AgentStatus,
  HealthReport,
  Identity,
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
  /** A prepared client (tests); by default one is made for the profile's URL. */
  client?: FaucetClient;
  /** Test seams only. */
  hooks?: EngineHooks;
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
  const explicitUrl = options.baseUrl ?? env.REKEY_API_URL ?? env.LIGHTNING_WALLET_API_URL;
  if (explicitUrl !== undefined) validateBaseUrl(explicitUrl);
  const { store, surface } = options;
  const clock = options.clock ?? systemClock;
  const envApiKey = env.REKEY_API_KEY ?? env.LIGHTNING_WALLET_API_KEY;

  const clients = new Map<string, FaucetClient>();
  const rotationsInFlight = new Map<string, Promise<CompletedRotation>>();
  const idempotencyInFlight = new Map<string, Promise<unknown>>();
  let resolving: Promise<void> | undefined;
  let envIdentity: Promise<Principal | undefined> | undefined;

  async function readProfile(options?: ReadOptions): Promise<Profile | undefined> {
    return (await store.read(options)).data.profiles[profileName];
  }

  /** The profile's URL; @throws RekeyError CONFIG_INVALID when another URL was asked for. */
  function baseUrlOf(profile: Profile | undefined): string {
    if (!profile) return explicitUrl ?? resolveBaseUrl(env);
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
    return baseUrlOf(await readProfile());
  }

  async function client(): Promise<FaucetClient> {
    if (options.client) return options.client;
    const url = await baseUrl();
    let existing = clients.get(url);
    if (!existing) {
      existing = createFaucetClient({ baseUrl: url, clock });
      clients.set(url, existing);
    }
    return existing;
  }

  /** Which principal the environment's key belongs to (asked once, with whoami). */
  function envPrincipal(): Promise<Principal | undefined> {
    if (envApiKey === undefined || envApiKey === "") return Promise.resolve(undefined);
    envIdentity ??= (async () => {
      const identity = await (await client()).whoami(envApiKey);
      return identity.type === "operator" ? OPERATOR : agent(identity.id);
    })().catch((error: unknown) => {
      // An unreachable faucet now must not hide the seed for the life of the process.
      envIdentity = undefined;
      throw error;
    });
    return envIdentity;
  }

  async function envKey(principal: Principal): Promise<string | undefined> {
    if (envApiKey === undefined || envApiKey === "") return undefined;
    const seeded = await envPrincipal().catch(() => undefined);
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
    client,
    baseUrl,
    envKey,
    invalidateKeys: () => keyProviderRef.invalidate(),
  };

  /**
   * Resolves every leftover intent of the profile before anything else uses the store.
   * Concurrent callers share one pass.
   */
  async function resolveLeftovers(): Promise<PendingResolution[]> {
    const profile = await readProfile();
    const pending = Object.keys(profile?.intents ?? {});
    if (pending.length === 0) return [];
    const results: PendingResolution[] = [];
    for (const key of pending) {
      const resolution = await resolveIntent(context, key);
      if (resolution) results.push(resolution);
    }
    return results;
  }

  /**
   * Resolves leftover intents before the store is used. `seen`, a profile the caller has just
   * read, saves a read when it holds no intent (the common case).
   */
  async function ensureResolved(seen?: Profile): Promise<void> {
    if (seen !== undefined && Object.keys(seen.intents).length === 0) return;
    resolving ??= resolveLeftovers()
      .then(() => undefined)
      .finally(() => {
        resolving = undefined;
      });
    await resolving;
  }

  /** The profile's active principal when the store holds its key. */
  function storedActiveIn(profile: Profile | undefined): Principal | undefined {
    if (!profile) return undefined;
    const active = parsePrincipalKey(profile.active);
    return storedKeyOf(profile, active) ? active : undefined;
  }

  /** The principal a profile acts as: its active one when it holds a key, else the env seed's. */
  async function activeIn(profile: Profile | undefined): Promise<Principal | undefined> {
    return storedActiveIn(profile) ?? envPrincipal();
  }

  async function activePrincipal(): Promise<Principal | undefined> {
    return activeIn(await readProfile());
  }

  async function requireActive(): Promise<Principal> {
    const active = await activePrincipal();
    if (!active) {
      throw new RekeyError("NOT_FOUND", `Profile "${profileName}" holds no key`, {
        hint: "Run `rekey register` or `rekey login`, or set REKEY_API_KEY.",
      });
    }
    return active;
  }

  /** The current key of a principal: the store's, else the environment's seed. */
  async function currentKey(principal: Principal): Promise<{ key: string; stored?: StoredKey }> {
    const stored = storedKeyOf(await readProfile(), principal);
    if (stored) return { key: stored.key, stored };
    const seeded = await envKey(principal);
    if (seeded !== undefined) return { key: seeded };
    throw missingKeyError(principal, profileName);
  }

  const keyProvider = createKeyProvider({
    store,
    currentKey: async (principal) => (await currentKey(principal ?? (await requireActive()))).key,
    resolvePrincipal: async (principal) => principal ?? (await requireActive()),
  });
  keyProviderRef.invalidate = () => keyProvider.invalidate();

  async function saveKey(principal: Principal, key: StoredKey, makeActive: boolean): Promise<void> {
    const url = await baseUrl();
    await updateStore(
      store,
      (draft: StoreData) => {
        const profile = profileIn(draft, profileName, url, principal);
        setStoredKey(profile, principal, key);
        if (makeActive) profile.active = principalKey(principal);
      },
      () => keyProvider.invalidate(),
    );
  }

  /** Runs `work` holding this profile's operator rotation lock (as a rotation of it would). */
  async function withOperatorLock<T>(work: () => Promise<T>): Promise<T> {
    const lock = await store.lock(rotationLockName(profileName, principalKey(OPERATOR)), {
      leaseMs: context.lockLeaseMs,
      waitMs: context.lockWaitMs,
    });
    try {
      return await work();
    } finally {
      await lock.release();
    }
  }

  /**
   * Stores a key that did not come from a rotation (registered, logged in, created) for
   * `principal`, records it in the audit log as `action`, and returns its fingerprint.
   */
  async function storeNewKey(
    principal: Principal,
    key: string,
    details: Pick<StoredKey, "source" | "name" | "operatorId">,
    action: AuditEventInput["action"],
    makeActive: boolean,
  ): Promise<string> {
    const fp = fingerprint(key);
    const savedAt = new Date(clock.now()).toISOString();
    await saveKey(principal, { key, fingerprint: fp, savedAt, ...details }, makeActive);
    await audit(context, {
      principal: principalKey(principal),
      action,
      outcome: "success",
      newFingerprint: fp,
    });
    return fp;
  }

  function cooldownRemaining(until: string | undefined): number {
    if (until === undefined) return 0;
    return Math.max(0, Math.ceil((Date.parse(until) - clock.now()) / 1000));
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
      ...(reveal ? { apiKey: rotation.apiKey } : {}),
    };
  }

  async function rotateKey(request: RotateRequest = {}): Promise<RotationResult | RotationPlan> {
    // The key as the caller saw it, read before waiting on anything: if another process's
    // rotation finishes while this call waits (for its lock, or to resolve its intent), this
    // call returns that rotation instead of rotating a second time.
    const seenProfile = await readProfile();
    const seenTarget =
      request.target ?? (seenProfile ? parsePrincipalKey(seenProfile.active) : undefined);
    const seenFingerprint = seenTarget
      ? storedKeyOf(seenProfile, seenTarget)?.fingerprint
      : undefined;
    await ensureResolved();
    const actor = request.actor ?? (await requireActive());
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
    const actorKey = await currentKey(actor);
    const targetStored = storedKeyOf(await readProfile(), target);
    const targetFingerprint =
      targetStored?.fingerprint ??
      (samePrincipal(actor, target) ? fingerprint(actorKey.key) : undefined);
    const expectedFingerprint =
      request.expectedFingerprint ??
      (seenTarget && seenFingerprint && samePrincipal(seenTarget, target)
        ? seenFingerprint
        : targetFingerprint);
    const currentCooldown =
      cooldownRemaining(targetStored?.cooldownUntil) > 0 ? targetStored?.cooldownUntil : undefined;
    const minutes = cooldownMinutes(target);
    if (request.dryRun) {
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
    const flightKey = principalKey(target);
    const inFlight = rotationsInFlight.get(flightKey);
    if (inFlight) return toResult(await inFlight, true, request.reveal);
    // Another process rotated the key this call saw while it waited (to resolve that rotation's
    // intent): that rotation is this call's answer, and its fresh cooldown no reason to refuse.
    const rotatedMeanwhile = targetStored?.lastRotation;
    if (
      targetStored !== undefined &&
      rotatedMeanwhile !== undefined &&
      expectedFingerprint !== targetStored.fingerprint &&
      rotatedMeanwhile.oldFingerprint === expectedFingerprint
    ) {
      const rotation = { principal: target, record: rotatedMeanwhile, apiKey: targetStored.key };
      return toResult({ ...rotation, shared: true }, true, request.reveal);
    }
    if (currentCooldown !== undefined && !request.force) {
      const seconds = cooldownRemaining(currentCooldown);
      throw new RekeyError(
        "COOLDOWN_ACTIVE",
        `The ${principalLabel(target)} was rotated recently; its withdrawal cooldown runs until ${currentCooldown} (${formatDuration(seconds)} left)`,
        {
          hint: `Rotating again now would restart the ${minutes}-minute withdrawal block. Wait ${formatDuration(seconds)}, or force it deliberately.`,
          details: {
            cooldownUntil: currentCooldown,
            retryAfterSeconds: seconds,
            principal: principalLabel(target),
          },
        },
      );
    }
    // The journal entry written before the upstream call doubles as the writability preflight:
    // a store that cannot take it stops the rotation before the faucet is asked.
    const flight = rotateUnderLock(context, {
      target,
      actor,
      expectedFingerprint,
      signal: request.signal,
    });
    rotationsInFlight.set(flightKey, flight);
    try {
      const rotation = await flight;
      return toResult(rotation, rotation.shared, request.reveal);
    } finally {
      rotationsInFlight.delete(flightKey);
    }
  }

  const rekey: Rekey = {
    profileName,
    surface,
    baseUrl,
    activePrincipal,

    async register(input) {
      // The faucet creates the account and shows its recovery code once: the store must be
      // able to take the key before the faucet is asked.
      await store.checkWritable();
      // Under the operator's rotation lock, so that of two registrations racing in one profile
      // (two processes) only one asks the faucet: the other would overwrite its key.
      return withOperatorLock(async () => {
        const existing = await readProfile();
        if (existing?.operator) {
          throw new RekeyError(
            "CONFIG_INVALID",
            `Profile "${profileName}" already holds an operator key`,
            {
              hint: "Use another profile (--profile NAME) for a second operator.",
            },
          );
        }
        const reply = await (await client()).register(input);
        const fp = await storeNewKey(
          OPERATOR,
          reply.apiKey,
          {
            source: "register",
            operatorId: reply.operatorId,
            ...(input.name === undefined ? {} : { name: input.name }),
          },
          "register",
          true,
        );
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
      const identity: Identity = await (await client()).whoami(key);
      const principal = identity.type === "operator" ? OPERATOR : agent(identity.id);
      const profile = await readProfile();
      const makeActive =
        loginOptions.makeActive ?? (!profile || principal.kind === "operator" || !profile.operator);
      const fp = await storeNewKey(
        principal,
        key,
        {
          source: loginOptions.source ?? "login",
          name: identity.name,
          ...(identity.type === "operator" ? { operatorId: identity.id } : {}),
        },
        loginOptions.source === "import" ? "import" : "login",
        makeActive,
      );
      return { principal, identity, fingerprint: fp };
    },

    async createAgent(input) {
      await ensureResolved();
      const operatorKey = (await currentKey(OPERATOR)).key;
      // The agent's key exists only in the faucet's reply: make sure it can be stored.
      await store.checkWritable();
      const reply = await (await client()).createAgent(operatorKey, input);
      const fp = await storeNewKey(
        agent(reply.agentId),
        reply.apiKey,
        { source: "create", name: reply.name },
        "create_agent",
        false,
      );
      return { agentId: reply.agentId, name: reply.name, fingerprint: fp };
    },

    async recover(recoveryCode) {
      const code = recoveryCode.trim();
      if (code.length === 0 || code.length > 512) {
        throw new RekeyError("INVALID_INPUT", "The recovery code is empty or too long", {
          hint: "Paste the recovery code you were given at registration.",
        });
      }
      // Under the operator's rotation lock: a rotation finishing after the recovery would
      // store its key, which the recovery has just invalidated.
      return withOperatorLock(async () => {
        const old = storedKeyOf(await readProfile(), OPERATOR);
        // Recovery invalidates the operator's key: the store must be able to take the new one.
        await store.checkWritable();
        const reply = await (await client()).recover(code, {});
        const now = new Date(clock.now()).toISOString();
        const record = {
          requestId: "recover",
          oldFingerprint: old?.fingerprint ?? "none",
          newFingerprint: fingerprint(reply.apiKey),
          rotatedAt: now,
          cooldownUntil: reply.cooldownUntil ?? new Date(clock.now() + 60 * 60_000).toISOString(),
          verified: false,
          surface,
        };
        await saveKey(
          OPERATOR,
          {
            key: reply.apiKey,
            fingerprint: record.newFingerprint,
            savedAt: now,
            source: "recover",
            operatorId: reply.operatorId,
            lastRotation: record,
            cooldownUntil: record.cooldownUntil,
            ...(old?.name === undefined ? {} : { name: old.name }),
          },
          true,
        );
        let verified = false;
        try {
          verified = (await (await client()).whoami(reply.apiKey)).type === "operator";
        } catch {
          verified = false;
        }
        if (verified) {
          await updateStore(store, (draft) => {
            const stored = draft.profiles[profileName]?.operator;
            if (stored?.lastRotation) stored.lastRotation.verified = true;
          });
        }
        await audit(context, {
          principal: "operator",
          action: "recover",
          outcome: "success",
          oldFingerprint: record.oldFingerprint,
          newFingerprint: record.newFingerprint,
          cooldownUntil: record.cooldownUntil,
        });
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
    },

    async whoami(principal) {
      await ensureResolved();
      const target = principal ?? (await requireActive());
      const identity = await keyProvider.withKey(target, async (key) =>
        (await client()).whoami(key),
      );
      const key = await keyProvider.current(target);
      return { ...identity, fingerprint: key.fingerprint };
    },

    async status(principal, options = {}) {
      // One read serves the whole status unless an unfinished rotation must be resolved first.
      let profile = await readProfile({ maxAgeMs: options.maxAgeMs });
      if (profile && Object.keys(profile.intents).length > 0) {
        const resolveError = await ensureResolved().then(
          () => undefined,
          (error: unknown) => error,
        );
        // A lost key is reported where it is found; an unreachable faucet leaves the intent
        // to be shown as an unfinished rotation.
        if (isRekeyError(resolveError, "KEY_LOST")) throw resolveError;
        profile = await readProfile();
      }
      // No await when the store answers: status endpoints call this on every poll.
      const actor = storedActiveIn(profile) ?? (await envPrincipal());
      const target = principal ?? actor ?? OPERATOR;
      // An agent session sees its own status only, as with rotateKey.
      if (actor?.kind === "agent" && !samePrincipal(actor, target)) {
        throw new RekeyError(
          "FORBIDDEN",
          `An agent can read only its own status, not the ${principalLabel(target)}'s`,
          { details: { principal: principalLabel(target) } },
        );
      }
      const stored = storedKeyOf(profile, target);
      const seeded = stored ? undefined : await envKey(target);
      const intent = profile?.intents[principalKey(target)];
      const cooldownUntil = stored?.cooldownUntil;
      const remaining = cooldownRemaining(cooldownUntil);
      return {
        principal: target,
        label: principalLabel(target),
        profile: profileName,
        baseUrl: baseUrlOf(profile),
        hasKey: stored !== undefined || seeded !== undefined,
        keySource: stored ? "store" : seeded !== undefined ? "env" : undefined,
        fingerprint:
          stored?.fingerprint ?? (seeded === undefined ? undefined : fingerprint(seeded)),
        name: stored?.name,
        savedAt: stored?.savedAt,
        keyAgeSeconds: stored
          ? Math.max(0, Math.floor((clock.now() - Date.parse(stored.savedAt)) / 1000))
          : undefined,
        lastRotation: stored?.lastRotation,
        cooldownUntil: remaining > 0 ? cooldownUntil : undefined,
        cooldownRemainingSeconds: remaining,
        pendingRotation: intent
          ? { requestId: intent.requestId, startedAt: intent.startedAt, phase: intent.phase }
          : undefined,
        store: { kind: store.kind, location: store.location },
      } satisfies KeyStatus;
    },

    async listAgents() {
      await ensureResolved();
      const agents = await keyProvider.withKey(OPERATOR, async (key) =>
        (await client()).listAgents(key),
      );
      const profile = await readProfile();
      return agents.map((listed): AgentStatus => {
        const stored = profile?.agents[String(listed.id)];
        const remaining = cooldownRemaining(stored?.cooldownUntil);
        return {
          id: listed.id,
          name: listed.name,
          balanceSats: listed.balanceSats,
          isActive: listed.isActive,
          hasKey: stored !== undefined,
          fingerprint: stored?.fingerprint,
          cooldownUntil: remaining > 0 ? stored?.cooldownUntil : undefined,
          cooldownRemainingSeconds: remaining,
          lastRotatedAt: stored?.lastRotation?.rotatedAt,
        };
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
      // A scope (a caller's name) owns the slot's first 8 hex digits, so another caller's key
      // never lands in its slots, and its records can be counted for the cap below.
      const scopePrefix =
        options.scope === undefined
          ? undefined
          : createHash("sha256").update(options.scope).digest("hex").slice(0, 8);
      const keyHash = createHash("sha256").update(idempotencyKey).digest("hex");
      const slot =
        scopePrefix === undefined ? keyHash.slice(0, 32) : scopePrefix + keyHash.slice(0, 24);
      const requestDigest = createHash("sha256").update(requestHash).digest("hex");
      const replay = async () => {
        const record = (await readProfile())?.idempotency[slot];
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
        return { status: record.status, body: record.body as never, replayed: true };
      };
      const earlier = idempotencyInFlight.get(slot);
      if (earlier) await earlier.catch(() => undefined);
      const first = await replay();
      if (first) return first;
      const work = (async () => {
        const lock = await store.lock(`idempotency.${profileName}.${slot}`, {
          leaseMs: context.lockLeaseMs,
          waitMs: context.lockWaitMs,
        });
        try {
          const again = await replay();
          if (again) return again;
          const outcome = await run();
          const url = await baseUrl();
          const now = clock.now();
          await updateStore(store, (draft) => {
            const profile = profileIn(draft, profileName, url, OPERATOR);
            for (const [key, record] of Object.entries(profile.idempotency)) {
              if (Date.parse(record.expiresAt) <= now) delete profile.idempotency[key];
            }
            if (scopePrefix !== undefined && options.maxRecords !== undefined) {
              // The scope's oldest records make room: a caller can only crowd out itself.
              const own = Object.entries(profile.idempotency)
                .filter(([key]) => key.startsWith(scopePrefix))
                .sort(([, a], [, b]) => a.createdAt.localeCompare(b.createdAt));
              for (const [key] of own.slice(0, Math.max(0, own.length - options.maxRecords + 1))) {
                delete profile.idempotency[key];
              }
            }
            profile.idempotency[slot] = {
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
      })();
      idempotencyInFlight.set(slot, work);
      try {
        return await work;
      } finally {
        if (idempotencyInFlight.get(slot) === work) idempotencyInFlight.delete(slot);
      }
    },

    async resolvePending() {
      return resolveLeftovers();
    },

    async withdraw(input) {
      await ensureResolved();
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
      const storeHealth = await store.health().catch((error: unknown) => ({
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

/** "12m 30s", "45s", "1h 0m". */
export function formatDuration(totalSeconds: number): string {
  const seconds = Math.max(0, Math.round(totalSeconds));
  if (seconds < 60) return `${seconds}s`;
  const minutes = Math.floor(seconds / 60);
  if (minutes < 60) return `${minutes}m ${seconds % 60}s`;
  return `${Math.floor(minutes / 60)}h ${minutes % 60}m`;
}
