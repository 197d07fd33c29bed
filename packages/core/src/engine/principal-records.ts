import { RekeyError } from "../errors.js";
import { agent, OPERATOR, type Principal, principalLabel } from "../principal.js";
import { markDisposable, thawedCopy } from "../store/freeze.js";
import { faucetIdOf, recordIdOf } from "../store/record-ids.js";
import type {
  CredentialStore,
  DeepReadonly,
  KeyFields,
  PrincipalRecord,
  Profile,
  StoreData,
  StoredKey,
  StoreSnapshot,
  WriteOptions,
} from "../store/types.js";
import { type Written, writeInBatch } from "./write-batch.js";

/**
 * A profile as one snapshot resolves it: its faucet, the operator whose agents it manages and
 * the principal it acts as, with the store's records to look them up in. Read once per
 * operation and passed down.
 */
export interface ProfileView {
  readonly data: DeepReadonly<StoreData>;
  readonly profileName: string;
  readonly profile: DeepReadonly<Profile> | undefined;
  /** The faucet's record key ({@link faucetIdOf}), once a URL is known. */
  readonly faucet: string;
  /** The operator record's principal ("operator:12"), when known. */
  readonly operator: string | undefined;
  /** The record principal this view acts as ("agent:7", "operator:12"), when known. */
  readonly actsAs: string | undefined;
}

/** A view of one snapshot the engine read or wrote: the snapshot is the base of its next write. */
export interface SnapshotView extends ProfileView {
  readonly snapshot: StoreSnapshot;
}

/** Overrides of a view: `--as`, and an operator learnt from the environment's key. */
export interface ViewOverrides {
  actAs?: string | undefined;
  envOperator?: string | undefined;
}

/** Builds the view of `profileName` in `data`; `baseUrl` is used when the profile is new. */
export function viewOf(
  data: DeepReadonly<StoreData>,
  profileName: string,
  baseUrl: string,
  overrides: ViewOverrides = {},
): ProfileView {
  const profile = data.profiles[profileName];
  const faucet = faucetIdOf(profile?.baseUrl ?? baseUrl);
  const actAs = overrides.actAs;
  const operator =
    actAs?.startsWith("operator") === true
      ? actAs
      : (profile?.operator ??
        operatorOfAgent(data, faucet, actAs ?? profile?.actsAs) ??
        overrides.envOperator);
  return {
    data,
    profileName,
    profile,
    faucet,
    operator,
    actsAs: actAs ?? profile?.actsAs ?? operator,
  };
}

/** The operator owning an agent record, as "operator:N", when the record says. */
function operatorOfAgent(
  data: DeepReadonly<StoreData>,
  faucet: string,
  principal: string | undefined,
): string | undefined {
  if (!principal?.startsWith("agent:")) return undefined;
  const id = data.principals[recordIdOf(faucet, principal)]?.operatorId;
  return id === undefined ? undefined : `operator:${id}`;
}

/**
 * The record principal of `principal` in a view: the view's operator for OPERATOR, "agent:N"
 * for an agent. Undefined when the view has no operator.
 */
export function recordPrincipalOf(view: ProfileView, principal: Principal): string | undefined {
  return principal.kind === "operator" ? view.operator : `agent:${principal.agentId}`;
}

/** The engine's principal for a record principal ("operator:12" → OPERATOR). */
export function principalOfRecord(recordPrincipal: string): Principal {
  if (recordPrincipal.startsWith("operator")) return OPERATOR;
  return agent(Number(recordPrincipal.slice("agent:".length)));
}

/** The principal the view acts as, when known. */
export function activePrincipalOf(view: ProfileView): Principal | undefined {
  return view.actsAs === undefined ? undefined : principalOfRecord(view.actsAs);
}

/** The record of a principal in a view, if any (with or without a key). */
export function recordOf(
  view: ProfileView,
  principal: Principal,
): DeepReadonly<PrincipalRecord> | undefined {
  const recordPrincipal = recordPrincipalOf(view, principal);
  if (recordPrincipal === undefined) return undefined;
  return view.data.principals[recordIdOf(view.faucet, recordPrincipal)];
}

/** The stored key of a principal in a view, if the store holds one. */
export function storedKeyOf(
  view: ProfileView | undefined,
  principal: Principal,
): DeepReadonly<StoredKey> | undefined {
  if (!view) return undefined;
  const record = recordOf(view, principal);
  return record?.key === undefined ? undefined : (record as DeepReadonly<StoredKey>);
}

/** The records this view answers for: its operator, its agents, the principal it acts as. */
export function recordsOfView(view: ProfileView): DeepReadonly<PrincipalRecord>[] {
  const operatorId = Number(view.operator?.match(/^operator:(\d+)$/)?.[1] ?? Number.NaN);
  const found: DeepReadonly<PrincipalRecord>[] = [];
  // A loop, not Object.values().filter(): this runs several times per operation, over every
  // record of a fleet.
  for (const id in view.data.principals) {
    const record = view.data.principals[id];
    if (record === undefined || record.faucet !== view.faucet) continue;
    if (
      record.principal === view.operator ||
      record.principal === view.actsAs ||
      (record.operatorId === operatorId && record.principal.startsWith("agent:"))
    ) {
      found.push(record);
    }
  }
  return found;
}

/**
 * The record of `recordPrincipal` on `faucet` in a draft, writable (a copy replaces the frozen
 * one the draft shares with the snapshot), created empty when missing.
 */
export function recordIn(
  draft: StoreData,
  faucet: string,
  recordPrincipal: string,
): PrincipalRecord {
  const existing = writableRecord(draft, faucet, recordPrincipal);
  if (existing) return existing;
  const created: PrincipalRecord = { faucet: faucetIdOf(faucet), principal: recordPrincipal };
  draft.principals[recordIdOf(faucet, recordPrincipal)] = created;
  return created;
}

/** The record of `recordPrincipal` on `faucet` in a draft, writable, if there is one. */
export function writableRecord(
  draft: StoreData,
  faucet: string,
  recordPrincipal: string,
): PrincipalRecord | undefined {
  const id = recordIdOf(faucet, recordPrincipal);
  const existing = draft.principals[id];
  if (existing === undefined || !Object.isFrozen(existing)) return existing;
  const copy = thawedCopy(existing);
  draft.principals[id] = copy;
  return copy;
}

/** Sets the key fields of a record, or with `undefined` removes them. */
export function setKey(record: PrincipalRecord, key: KeyFields | undefined): void {
  if (key) {
    // A stored key ends a recorded loss: the way back was taken.
    delete record.keyLost;
    record.key = key.key;
    record.fingerprint = key.fingerprint;
    record.savedAt = key.savedAt;
    record.source = key.source;
    return;
  }
  delete record.key;
  delete record.fingerprint;
  delete record.savedAt;
  delete record.source;
}

/** The named profile of a draft, created for `baseUrl` when missing. */
export function profileIn(draft: StoreData, name: string, baseUrl: string): Profile {
  const existing = draft.profiles[name];
  if (existing && Object.isFrozen(existing)) {
    const copy = structuredClone(existing);
    draft.profiles[name] = copy;
    return copy;
  }
  if (existing) return existing;
  const created: Profile = { baseUrl };
  draft.profiles[name] = created;
  return created;
}

/**
 * A draft of a snapshot to change: its maps are copies, their values the snapshot's frozen
 * records, which `recordIn`, `writableRecord` and `profileIn` copy before a change. Unchanged
 * records stay shared, so a store can tell them from changed ones by identity, and a change to
 * one agent of a thousand copies one record.
 */
export function draftOf(data: DeepReadonly<StoreData>): StoreData {
  // The draft and its maps go to the store and are never used again by their maker.
  return markDisposable({
    ...(data as StoreData),
    principals: markDisposable({ ...(data.principals as StoreData["principals"]) }),
    profiles: markDisposable({ ...(data.profiles as StoreData["profiles"]) }),
    idempotency: markDisposable({ ...(data.idempotency as StoreData["idempotency"]) }),
  });
}

/**
 * Applies `mutate` to a draft of a fresh read ({@link draftOf}) and writes it with
 * compare-and-set, retrying on conflict; concurrent changes in one process are written together
 * (see write-batch.ts). `mutate` may run several times, so it must only change the draft it is
 * given, and change records only through `recordIn`/`writableRecord`/`profileIn`.
 * @throws RekeyError STORE_UNAVAILABLE when the store stays contended, or any error of the store.
 */
export async function updateStore<T>(
  store: CredentialStore,
  mutate: (draft: StoreData) => T,
  afterWrite?: (snapshot: StoreSnapshot) => void,
): Promise<T> {
  return (await writeInBatch(store, mutate, afterWrite)).value;
}

/**
 * {@link updateStore} starting from `base`, a snapshot the caller has just read or written,
 * instead of reading again: compare-and-set proves it still current, or hands back the one
 * that replaced it (and `mutate` runs again on that). Resolves with the snapshot written, the
 * base of the caller's next write.
 */
export function updateStoreFrom<T>(
  store: CredentialStore,
  base: StoreSnapshot | undefined,
  mutate: (draft: StoreData) => T,
  afterWrite?: (snapshot: StoreSnapshot) => void,
  options?: WriteOptions,
): Promise<Written<T>> {
  return writeInBatch(store, mutate, afterWrite, base, options);
}

/**
 * True unless `actAs` (`--as`, REKEY_AS) names a principal for which the view's store holds
 * neither a key nor a recorded loss (whose KEY_LOST says how to get the key back).
 */
export function actAsHeldIn(view: ProfileView, actAs: string | undefined): boolean {
  if (actAs === undefined) return true;
  const record = view.data.principals[recordIdOf(view.faucet, actAs)];
  return record?.key !== undefined || record?.keyLost !== undefined;
}

/**
 * The refusal of every operation of a session told to act as a principal (`--as agent:9`) the
 * store holds no key for on the profile's faucet: rather than an answer as a profile without a
 * key ("run rekey register"), or, where the operator's key serves, as the operator.
 * `missing: "profile"`: the session itself holds no key.
 */
export function unheldActAsError(actAs: string, baseUrl: string): RekeyError {
  const named = actAs.replace(":", " ");
  return new RekeyError("NOT_FOUND", `The store holds no key for ${named} on ${baseUrl}`, {
    hint: `Check the principal given to --as (or REKEY_AS): \`rekey agents\` lists the operator's agents and which keys the store holds, \`rekey profiles show\` the principals seen; \`rekey login\` stores ${named}'s key.`,
    details: { principal: principalOfRecord(actAs), missing: "profile" },
  });
}

/** @throws RekeyError NOT_FOUND naming what to do when the principal has no key. */
export function missingKeyError(principal: Principal, profileName: string): RekeyError {
  const label = principalLabel(principal);
  return new RekeyError(
    "NOT_FOUND",
    `No key is stored for the ${label} in profile "${profileName}"`,
    {
      hint:
        principal.kind === "operator"
          ? "Run `rekey register` or `rekey login` first."
          : "Create the agent with `rekey agents create`, or rotate its key as its operator to get one.",
      details: { principal: label, missing: "key" },
    },
  );
}
