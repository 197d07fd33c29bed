import { RekeyError } from "../errors.js";
import { faucetIdOf, recordIdOf } from "../store/record-ids.js";
import { PROFILE_NAME_PATTERN } from "../store/schema.js";
import type { CredentialStore, DeepReadonly, StoreData } from "../store/types.js";
import { type ProfileView, recordsOfView, updateStore } from "./principal-records.js";

/**
 * Profiles are named views (a faucet, an operator, the principal acted as) over principal
 * records: listing, switching, renaming or removing one never touches a key.
 */

/** One profile as `rekey profiles list|show` presents it. */
export interface ProfileSummary {
  name: string;
  baseUrl: string;
  /** "operator:12", when the profile manages an operator's agents. */
  operator: string | undefined;
  /** The principal it acts as ("agent:7"); its operator when unset. */
  actsAs: string | undefined;
  /** Whether it is the store's current profile (`rekey profiles use`). */
  current: boolean;
  /** Whether the record it acts as holds a key. */
  hasKey: boolean;
  /** Record principals this profile sees on its faucet: its operator's agents included. */
  principals: string[];
}

/** Every profile of the store, by name. Throws the store's read errors. */
export async function listProfiles(store: CredentialStore): Promise<ProfileSummary[]> {
  const { data } = await store.read();
  return Object.keys(data.profiles)
    .sort()
    .map((name) => summarise(data, name));
}

/** The store's current profile (`rekey profiles use`), if one was chosen. */
export async function currentProfileName(store: CredentialStore): Promise<string | undefined> {
  return (await store.read()).data.currentProfile;
}

/**
 * Makes `name` the profile used when none is named.
 * @throws RekeyError NOT_FOUND when there is no such profile.
 */
export async function useProfile(store: CredentialStore, name: string): Promise<void> {
  await updateStore(store, (draft) => {
    requireProfile(draft, name);
    draft.currentProfile = name;
  });
}

/**
 * Renames a profile (its records stay as they are).
 * @throws RekeyError NOT_FOUND (no such profile), CONFIG_INVALID (bad or taken new name).
 */
export async function renameProfile(
  store: CredentialStore,
  from: string,
  to: string,
): Promise<void> {
  checkName(to);
  await updateStore(store, (draft) => {
    const profile = requireProfile(draft, from);
    if (draft.profiles[to] !== undefined) {
      throw new RekeyError("CONFIG_INVALID", `Profile "${to}" already exists`);
    }
    draft.profiles[to] = profile;
    delete draft.profiles[from];
    if (draft.currentProfile === from) draft.currentProfile = to;
  });
}

/**
 * Removes a profile. The principals it pointed at keep their records and keys (`rekey forget`
 * removes those); returns the records it pointed at.
 * @throws RekeyError NOT_FOUND when there is no such profile.
 */
export async function removeProfile(store: CredentialStore, name: string): Promise<string[]> {
  return updateStore(store, (draft) => {
    const profile = requireProfile(draft, name);
    delete draft.profiles[name];
    if (draft.currentProfile === name) delete draft.currentProfile;
    return [profile.operator, profile.actsAs].filter(
      (principal): principal is string => principal !== undefined,
    );
  });
}

function summarise(data: DeepReadonly<StoreData>, name: string): ProfileSummary {
  const profile = data.profiles[name];
  if (!profile) throw new RekeyError("NOT_FOUND", `No profile "${name}"`);
  const acting = profile.actsAs ?? profile.operator;
  // The records the profile itself names (not any operator derived from its agent).
  const view: ProfileView = {
    data,
    profileName: name,
    profile,
    faucet: faucetIdOf(profile.baseUrl),
    operator: profile.operator,
    actsAs: acting,
  };
  const principals = recordsOfView(view)
    .map((record) => record.principal)
    .sort();
  return {
    name,
    baseUrl: profile.baseUrl,
    operator: profile.operator,
    actsAs: profile.actsAs,
    current: data.currentProfile === name,
    hasKey:
      acting !== undefined &&
      data.principals[recordIdOf(profile.baseUrl, acting)]?.key !== undefined,
    principals,
  };
}

/**
 * One profile's summary.
 * @throws RekeyError NOT_FOUND when there is no such profile.
 */
export async function showProfile(store: CredentialStore, name: string): Promise<ProfileSummary> {
  return summarise((await store.read()).data, name);
}

function requireProfile(draft: StoreData, name: string) {
  const profile = draft.profiles[name];
  if (!profile) {
    throw new RekeyError("NOT_FOUND", `No profile "${name.slice(0, 64)}"`, {
      hint: "`rekey profiles list` shows the profiles of this store.",
    });
  }
  return profile;
}

function checkName(name: string): void {
  if (!PROFILE_NAME_PATTERN.test(name)) {
    throw new RekeyError(
      "CONFIG_INVALID",
      `Invalid profile name ${JSON.stringify(name.slice(0, 70))}`,
      {
        hint: "Use letters, digits, '.', '_' or '-' (up to 64 characters).",
      },
    );
  }
}
