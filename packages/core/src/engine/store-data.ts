import { RekeyError } from "../errors.js";
import { type Principal, principalKey, principalLabel } from "../principal.js";
import type {
  CredentialStore,
  Profile,
  StoreData,
  StoredKey,
  StoreSnapshot,
} from "../store/types.js";
import { writeInBatch } from "./write-batch.js";

/** The stored key of a principal in a profile, if any. */
export function storedKeyOf(
  profile: Profile | undefined,
  principal: Principal,
): StoredKey | undefined {
  if (!profile) return undefined;
  return principal.kind === "operator"
    ? profile.operator
    : profile.agents[String(principal.agentId)];
}

/** Sets (or, with `undefined`, removes) the stored key of a principal. */
export function setStoredKey(
  profile: Profile,
  principal: Principal,
  key: StoredKey | undefined,
): void {
  if (principal.kind === "operator") {
    if (key) profile.operator = key;
    else delete profile.operator;
  } else if (key) {
    profile.agents[String(principal.agentId)] = key;
  } else {
    delete profile.agents[String(principal.agentId)];
  }
}

export function newProfile(baseUrl: string, active: Principal): Profile {
  return { baseUrl, active: principalKey(active), agents: {}, intents: {}, idempotency: {} };
}

/** The named profile of a draft, created for `baseUrl` (acting as `active`) when missing. */
export function profileIn(
  draft: StoreData,
  name: string,
  baseUrl: string,
  active: Principal,
): Profile {
  const existing = draft.profiles[name];
  if (existing) return existing;
  const created = newProfile(baseUrl, active);
  draft.profiles[name] = created;
  return created;
}

/**
 * Applies `mutate` to a fresh read and writes it with compare-and-set, retrying on conflict;
 * concurrent changes in one process are written together (see write-batch.ts).
 * `mutate` may run several times, so it must only change the draft it is given.
 * @throws RekeyError STORE_UNAVAILABLE when the store stays contended, or any error of the store.
 */
export async function updateStore<T>(
  store: CredentialStore,
  mutate: (draft: StoreData) => T,
  afterWrite?: (snapshot: StoreSnapshot) => void,
): Promise<T> {
  return writeInBatch(store, mutate, afterWrite);
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
      details: { principal: label },
    },
  );
}
