import type { Clock } from "../clock.js";
import {
  actAsHeldIn,
  type ProfileView,
  principalOfRecord,
  recordsOfView,
  unheldActAsError,
  updateStore,
  viewOf,
  writableRecord,
} from "../engine/principal-records.js";
import type { KeySchedule } from "../engine/types.js";
import { RekeyError } from "../errors.js";
import { principalLabel } from "../principal.js";
import { recordIdOf } from "../store/record-ids.js";
import type { CredentialStore, DeepReadonly, PrincipalRecord, StoreData } from "../store/types.js";
import {
  type DueState,
  dueStateOf,
  parsePolicy,
  type RotationPolicy,
  type RotationPolicyInput,
} from "./policy.js";

/** Which profile's principals a policy command works on (the front end's --profile and --as). */
export interface PolicyScope {
  store: CredentialStore;
  profileName: string;
  /** The profile's faucet URL (`rekey.baseUrl()`). */
  baseUrl: string;
  actAs?: string | undefined;
  clock: Clock;
}

/** Whose policy: the principal the profile acts as, one agent, or every stored agent. */
export type PolicyTarget =
  | { kind: "active" }
  | { kind: "agent"; agentId: number }
  | { kind: "all-agents" };

/** One principal's policy and where it stands now. */
export interface PolicyStatus {
  /** The record principal: "operator:12", "agent:7". */
  principal: string;
  label: string;
  fingerprint?: string | undefined;
  /** ISO-8601 UTC: when the current key was stored. */
  savedAt?: string | undefined;
  policy: RotationPolicy;
  /** Absent when the record holds no key (nothing to rotate). */
  due?: DueState | undefined;
}

/**
 * Sets (or with `input` undefined, removes) the rotation policy of the targeted principals'
 * records, in one store write. Every policy is checked before anything is written.
 * @throws RekeyError INVALID_INPUT (see parsePolicy), NOT_FOUND (no such record in the
 *   profile), STORE_*
 */
export async function setRotationPolicy(
  scope: PolicyScope,
  target: PolicyTarget,
  input: RotationPolicyInput | undefined,
): Promise<PolicyStatus[]> {
  const view = await readScope(scope);
  const targets = targetRecords(view, target);
  const setAt = new Date(scope.clock.now()).toISOString();
  const policies = targets.map((record) => ({
    record,
    policy:
      input === undefined
        ? undefined
        : parsePolicy(input, principalOfRecord(record.principal), setAt),
  }));
  await updateStore(scope.store, (draft: StoreData) => {
    for (const { record, policy } of policies) {
      const writable = writableRecord(draft, record.faucet, record.principal);
      // Forgotten meanwhile: nothing left to schedule.
      if (!writable) continue;
      if (policy) writable.policy = policy;
      else delete writable.policy;
    }
  });
  const now = scope.clock.now();
  return policies.flatMap(({ record, policy }) =>
    policy ? [statusOf({ ...record, policy } as DeepReadonly<PrincipalRecord>, policy, now)] : [],
  );
}

/**
 * The profile's principals that have a policy, with their due state now.
 * @throws RekeyError STORE_*
 */
export async function listRotationPolicies(scope: PolicyScope): Promise<PolicyStatus[]> {
  const view = await readScope(scope);
  const now = scope.clock.now();
  return policyRecordsOf(view).map((record) =>
    statusOf(record, record.policy as RotationPolicy, now),
  );
}

/** The records of a view that carry a policy, operator first, then agents by id. */
export function policyRecordsOf(view: ProfileView): DeepReadonly<PrincipalRecord>[] {
  return recordsOfView(view)
    .filter((record) => record.policy !== undefined)
    .sort(byPrincipal);
}

/** A record's due state now (undefined when it holds no key). */
export function dueStateOfRecord(
  record: DeepReadonly<PrincipalRecord>,
  nowMs: number,
): DueState | undefined {
  if (record.policy === undefined || record.savedAt === undefined) return undefined;
  return dueStateOf(
    record.policy as RotationPolicy,
    Date.parse(record.savedAt),
    recordIdOf(record.faucet, record.principal),
    nowMs,
  );
}

function statusOf(
  record: DeepReadonly<PrincipalRecord>,
  policy: RotationPolicy,
  now: number,
): PolicyStatus {
  return {
    principal: record.principal,
    label: principalLabel(principalOfRecord(record.principal)),
    fingerprint: record.fingerprint,
    savedAt: record.savedAt,
    policy,
    due: dueStateOfRecord({ ...record, policy } as DeepReadonly<PrincipalRecord>, now),
  };
}

/** @throws RekeyError NOT_FOUND when `--as` names a principal the store holds no key for. */
async function readScope(scope: PolicyScope): Promise<ProfileView> {
  const snapshot = await scope.store.read();
  const view = viewOf(snapshot.data, scope.profileName, scope.baseUrl, { actAs: scope.actAs });
  // A policy lives in a stored record: a key only in the environment has none to hold it.
  if (scope.actAs !== undefined && !actAsHeldIn(view, scope.actAs)) {
    throw unheldActAsError(scope.actAs, scope.baseUrl);
  }
  return view;
}

function targetRecords(view: ProfileView, target: PolicyTarget): DeepReadonly<PrincipalRecord>[] {
  const records = recordsOfView(view);
  if (target.kind === "all-agents") {
    const agents = records.filter((record) => record.principal.startsWith("agent:"));
    if (agents.length === 0) {
      throw new RekeyError("NOT_FOUND", `Profile "${view.profileName}" has no stored agent keys`, {
        hint: "Create agents with `rekey agents create`, or rotate them once to store their keys.",
      });
    }
    return agents.sort(byPrincipal);
  }
  const wanted = target.kind === "agent" ? `agent:${target.agentId}` : view.actsAs;
  const record = records.find((candidate) => candidate.principal === wanted);
  if (record === undefined || wanted === undefined) {
    throw new RekeyError(
      "NOT_FOUND",
      wanted === undefined
        ? `Profile "${view.profileName}" holds no key to set a policy for`
        : `No record of ${wanted} in profile "${view.profileName}"`,
      { hint: "Run `rekey status` or `rekey profiles show` to see which principals are stored." },
    );
  }
  return [record];
}

function byPrincipal(a: DeepReadonly<PrincipalRecord>, b: DeepReadonly<PrincipalRecord>): number {
  const rank = (record: DeepReadonly<PrincipalRecord>) =>
    record.principal.startsWith("operator") ? -1 : Number(record.principal.slice("agent:".length));
  return rank(a) - rank(b);
}

/** The schedule `status` shows for a record: its policy and due state, when it has both. */
export function keyScheduleOf(
  record: DeepReadonly<PrincipalRecord>,
  nowMs: number,
): KeySchedule | undefined {
  const state = dueStateOfRecord(record, nowMs);
  if (state === undefined) return undefined;
  return {
    policy: record.policy as RotationPolicy,
    dueAt: state.dueAt,
    nextRotationAt: state.nextRotationAt,
    inWindow: state.inWindow,
    due: state.due,
    overdue: state.overdue,
  };
}
