import { z } from "zod";
import { RekeyError } from "../../errors.js";
import { lazily } from "../../lazily.js";
import { jsonValueSchema } from "../json-value.js";
import { faucetIdOf, operatorRecordPrincipal, recordIdOf, scopePrefix } from "../record-ids.js";
import type { PrincipalRecord, Profile, RotationIntent, StoreData } from "../types.js";

/**
 * Schema 1 kept keys per profile: a profile held its operator's key, its agents' keys, its
 * unfinished rotations and its idempotency records. Schema 2 keeps one record per principal per
 * faucet, and profiles only point at records. This step turns the first into the second
 * without dropping a key: two profiles holding one principal with different keys keep the most
 * recently saved one as current and the other as an alternate, which `rekey doctor --repair`
 * settles with the faucet.
 */

// Built on first use: only a store still at schema 1 is parsed with it.
function buildStoreDataV1Schema() {
  const isoUtc = z.iso.datetime();
  const surface = z.enum(["cli", "mcp", "http", "library"]);
  const v1PrincipalKey = z.string().regex(/^(operator|agent:[1-9]\d{0,9})$/);
  const v1RotationRecord = z.strictObject({
    requestId: z.string().min(1),
    oldFingerprint: z.string().min(1),
    newFingerprint: z.string().min(1),
    rotatedAt: isoUtc,
    cooldownUntil: isoUtc,
    verified: z.boolean(),
    surface,
  });
  const v1StoredKey = z.strictObject({
    key: z.string().min(1),
    fingerprint: z.string().min(1),
    savedAt: isoUtc,
    source: z.enum(["register", "login", "create", "rotate", "recover", "import"]),
    name: z.string().optional(),
    operatorId: z.number().int().nonnegative().optional(),
    lastRotation: v1RotationRecord.optional(),
    cooldownUntil: isoUtc.optional(),
  });
  const v1Intent = z.strictObject({
    requestId: z.string().min(1),
    principal: v1PrincipalKey,
    actor: v1PrincipalKey,
    oldFingerprint: z.string().min(1),
    startedAt: isoUtc,
    phase: z.enum(["requested", "stored"]),
    surface,
  });
  const v1Idempotency = z.strictObject({
    requestHash: z.string().regex(/^[0-9a-f]{64}$/),
    createdAt: isoUtc,
    expiresAt: isoUtc,
    status: z.number().int().min(100).max(599),
    body: jsonValueSchema,
  });
  const v1Profile = z.strictObject({
    baseUrl: z.url(),
    active: v1PrincipalKey,
    operator: v1StoredKey.optional(),
    agents: z.record(z.string().regex(/^[1-9]\d{0,9}$/), v1StoredKey),
    intents: z.record(v1PrincipalKey, v1Intent),
    idempotency: z.record(z.string().regex(/^[0-9a-f]{32}$/), v1Idempotency),
  });
  return z.strictObject({
    schemaVersion: z.literal(1),
    profiles: z.record(z.string().regex(/^[A-Za-z0-9][A-Za-z0-9_.-]{0,63}$/), v1Profile),
  });
}

/** The schema-1 document, as rekey 0.1 wrote it. */
export const storeDataV1Schema = lazily(buildStoreDataV1Schema);
type StoreDataV1 = z.infer<ReturnType<typeof buildStoreDataV1Schema>>;
type StoredKeyV1 = NonNullable<StoreDataV1["profiles"][string]["operator"]>;

/** A schema-2 document: today's shape, keys in clear. */
export type StoreDataV2 = Omit<StoreData, "schemaVersion"> & { schemaVersion: 2 };

/**
 * Migrates a schema-1 document (already validated by {@link storeDataV1Schema}).
 * @throws RekeyError STORE_CORRUPT when two profiles hold unfinished rotations of one principal
 *   (finish them first with the rekey that wrote the store: nothing is changed).
 */
export function migrateV1ToV2(v1: StoreDataV1): StoreDataV2 {
  const principals: Record<string, PrincipalRecord> = {};
  const profiles: Record<string, Profile> = {};
  const idempotency: StoreData["idempotency"] = {};
  const intentOwners = new Map<string, string>();
  // Which profile's key each record holds as current, to name the other profile of a conflict.
  const holders = new Map<string, string>();

  const merge = (
    profileName: string,
    faucet: string,
    principal: string,
    stored: StoredKeyV1,
    operatorId: number | undefined,
  ): void => {
    const id = recordIdOf(faucet, principal);
    const incoming: PrincipalRecord = {
      faucet,
      principal,
      ...(stored.name === undefined ? {} : { name: stored.name }),
      ...(operatorId === undefined ? {} : { operatorId }),
      key: stored.key,
      fingerprint: stored.fingerprint,
      savedAt: stored.savedAt,
      source: stored.source,
      ...(stored.lastRotation ? { lastRotation: stored.lastRotation } : {}),
      ...(stored.cooldownUntil ? { cooldownUntil: stored.cooldownUntil } : {}),
    };
    const existing = principals[id];
    if (!existing?.key) {
      principals[id] = mergeFields(incoming, existing);
      holders.set(id, profileName);
      return;
    }
    if (existing.key === stored.key) {
      principals[id] = mergeFields(existing, incoming);
      return;
    }
    // Two profiles, two keys for one principal: keep both. The current one is the key a
    // rotation recorded in the other copy issued (its old key is the other's), else the one
    // saved last; `rekey doctor --repair` settles it with the faucet.
    const incomingIsNewer =
      existing.lastRotation?.oldFingerprint === incoming.fingerprint
        ? false
        : incoming.lastRotation?.oldFingerprint === existing.fingerprint
          ? true
          : Date.parse(stored.savedAt) > Date.parse(existing.savedAt ?? "");
    const [current, other] = incomingIsNewer ? [incoming, existing] : [existing, incoming];
    const otherProfile = incomingIsNewer ? (holders.get(id) ?? profileName) : profileName;
    if (incomingIsNewer) holders.set(id, profileName);
    principals[id] = {
      ...mergeFields(current, other),
      alternates: [
        ...(existing.alternates ?? []),
        {
          key: other.key as string,
          fingerprint: other.fingerprint as string,
          savedAt: other.savedAt as string,
          source: other.source ?? "login",
          profile: otherProfile,
        },
      ],
    };
  };

  for (const [profileName, profile] of Object.entries(v1.profiles)) {
    const faucet = faucetIdOf(profile.baseUrl);
    const operatorId = profile.operator?.operatorId;
    const operator = profile.operator ? operatorRecordPrincipal(operatorId) : undefined;
    const mapKey = (key: string) => (key === "operator" ? (operator ?? "operator") : key);
    if (profile.operator && operator) {
      merge(profileName, faucet, operator, profile.operator, operatorId);
    }
    for (const [agentId, stored] of Object.entries(profile.agents)) {
      merge(profileName, faucet, `agent:${agentId}`, stored, operatorId);
    }
    for (const [key, intent] of Object.entries(profile.intents)) {
      const principal = mapKey(key);
      const id = recordIdOf(faucet, principal);
      const owner = intentOwners.get(id);
      if (owner !== undefined) {
        throw new RekeyError(
          "STORE_CORRUPT",
          `Profiles "${owner}" and "${profileName}" both hold an unfinished rotation of ${principal}: the store was left unchanged`,
          {
            hint: "Finish both with the rekey version that wrote this store (`rekey doctor --repair` in each profile), then upgrade.",
          },
        );
      }
      intentOwners.set(id, profileName);
      const migrated: RotationIntent = {
        ...intent,
        principal,
        actor: mapKey(intent.actor),
      };
      principals[id] = { ...(principals[id] ?? { faucet, principal }), intent: migrated };
    }
    const actsAs = profile.active === "operator" ? undefined : profile.active;
    profiles[profileName] = {
      baseUrl: profile.baseUrl,
      ...(operator ? { operator } : {}),
      ...(actsAs ? { actsAs } : {}),
    };
    // Schema 1 scoped idempotency keys by profile, acting as its operator: the slot keeps the
    // key's hash and gains the acting principal's scope.
    const acting = actsAs ?? operator;
    const scope = acting ? recordIdOf(faucet, acting) : `profile:${profileName}`;
    // A remembered reply becomes a remembered result, as schema 2's are read (see
    // storedIdempotencyRecordSchema): the status is HTTP's, and apps/http answers it.
    for (const [slot, { status: _status, body, ...record }] of Object.entries(
      profile.idempotency,
    )) {
      idempotency[scopePrefix(scope) + slot] = { ...record, state: "done", result: body };
    }
  }
  return { schemaVersion: 2, principals, profiles, idempotency };
}

/**
 * `primary` with what only `secondary` knows filled in: name and operator, the later rotation
 * and cooldown, an unfinished rotation. Keys are `primary`'s.
 */
function mergeFields(
  primary: PrincipalRecord,
  secondary: PrincipalRecord | undefined,
): PrincipalRecord {
  if (secondary === undefined) return primary;
  const merged: PrincipalRecord = { ...primary };
  if (merged.name === undefined && secondary.name !== undefined) merged.name = secondary.name;
  if (merged.operatorId === undefined && secondary.operatorId !== undefined) {
    merged.operatorId = secondary.operatorId;
  }
  const rotations = [primary.lastRotation, secondary.lastRotation].filter(
    (rotation) => rotation !== undefined,
  );
  const lastRotation = rotations.sort(
    (a, b) => Date.parse(b.rotatedAt) - Date.parse(a.rotatedAt),
  )[0];
  if (lastRotation !== undefined) merged.lastRotation = lastRotation;
  const cooldownUntil = latest(primary.cooldownUntil, secondary.cooldownUntil);
  if (cooldownUntil !== undefined) merged.cooldownUntil = cooldownUntil;
  const intent = primary.intent ?? secondary.intent;
  if (intent !== undefined) merged.intent = intent;
  return merged;
}

function latest(a: string | undefined, b: string | undefined): string | undefined {
  if (a === undefined) return b;
  if (b === undefined) return a;
  return Date.parse(a) >= Date.parse(b) ? a : b;
}
