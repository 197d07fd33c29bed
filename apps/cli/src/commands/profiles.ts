import {
  listProfiles,
  type ProfileSummary,
  profileView,
  recordPrincipalView,
  removeProfile,
  renameProfile,
  showProfile,
  useProfile,
} from "@rekey/core";
import type { CommandContext } from "../context.js";
import { formatFields, formatTable } from "../output.js";

/**
 * `rekey profiles [list]`: every profile of the store with its faucet and principals.
 * @throws RekeyError STORE_*
 */
export async function runProfilesList(context: CommandContext): Promise<void> {
  const profiles = await context.withRekey(({ store }) => listProfiles(store));
  context.output.result("profiles list", { profiles: profiles.map(profileView) }, () =>
    profiles.length === 0
      ? "No profiles yet: `rekey register` or `rekey login` makes one."
      : formatTable(
          ["", "profile", "acts as", "operator", "faucet", "key"],
          profiles.map((profile) => [
            profile.current ? "*" : "",
            profile.name,
            profile.actsAs ?? profile.operator ?? "-",
            profile.operator ?? "-",
            profile.baseUrl,
            profile.hasKey ? "yes" : "none",
          ]),
        ),
  );
}

/**
 * `rekey profiles show [NAME]`: one profile (default: the one this command would use).
 * @throws RekeyError NOT_FOUND, STORE_*
 */
export async function runProfilesShow(context: CommandContext, name?: string): Promise<void> {
  const profile = await context.withRekey(({ rekey, store }) =>
    showProfile(store, name ?? rekey.profileName),
  );
  context.output.result("profiles show", { profile: profileView(profile) }, () =>
    renderProfile(profile),
  );
}

/**
 * `rekey profiles use NAME`: the profile used when none is named.
 * @throws RekeyError NOT_FOUND, STORE_*
 */
export async function runProfilesUse(context: CommandContext, name: string): Promise<void> {
  await context.withRekey(({ store }) => useProfile(store, name));
  context.output.result("profiles use", { current: name }, () => `Now using profile "${name}".`);
}

/**
 * `rekey profiles rename FROM TO`.
 * @throws RekeyError NOT_FOUND, CONFIG_INVALID, STORE_*
 */
export async function runProfilesRename(
  context: CommandContext,
  from: string,
  to: string,
): Promise<void> {
  await context.withRekey(({ store }) => renameProfile(store, from, to));
  context.output.result("profiles rename", { from, to }, () => `Renamed "${from}" to "${to}".`);
}

/**
 * `rekey profiles remove NAME`: the profile goes; its principals' records and keys stay.
 * @throws RekeyError NOT_FOUND, STORE_*
 */
export async function runProfilesRemove(context: CommandContext, name: string): Promise<void> {
  const kept = await context.withRekey(({ store }) => removeProfile(store, name));
  context.output.result(
    "profiles remove",
    { removed: name, kept_records: kept.map(recordPrincipalView) },
    () =>
      [
        `Removed profile "${name}".`,
        ...(kept.length === 0
          ? []
          : [
              context.output.colors.dim(
                `The records of ${kept.join(", ")} and their keys stay in the store (\`rekey forget\` removes one).`,
              ),
            ]),
      ].join("\n"),
  );
}

function renderProfile(profile: ProfileSummary): string {
  return formatFields([
    ["profile", `${profile.name}${profile.current ? " (current)" : ""}`],
    ["faucet", profile.baseUrl],
    ["acts as", profile.actsAs ?? profile.operator ?? "nothing yet"],
    ["operator", profile.operator ?? "-"],
    ["principals", profile.principals.length === 0 ? "-" : profile.principals.join(", ")],
  ]);
}
