import type { Clock } from "../clock.js";
import type { DeliveryOutcome } from "../delivery/delivery-journal.js";
import { mapLimited } from "../engine/limited.js";
import { principalOfRecord, viewOf } from "../engine/principal-records.js";
import type { Rekey } from "../engine/types.js";
import { isRekeyError, toRekeyError } from "../errors.js";
import { principalLabel } from "../principal.js";
import type { CredentialStore, DeepReadonly, PrincipalRecord } from "../store/types.js";
import type { ScheduleEvent, ScheduleEventSink } from "./events.js";
import { dueStateOfRecord, policyRecordsOf } from "./policies.js";

/** What happened to one principal with a policy in a due run. */
export interface DueOutcome {
  /** The record principal: "operator:12", "agent:7". */
  principal: string;
  label: string;
  /**
   * `rotated`; `shared`: another process rotated it during this run; `would_rotate`: a dry run's
   * answer; `not_due`; `skipped_cooldown`: inside a withdrawal cooldown; `skipped_unfinished`:
   * an unfinished rotation is recorded (doctor resolves it); `no_key`; `failed`.
   */
  result:
    | "rotated"
    | "shared"
    | "would_rotate"
    | "not_due"
    | "skipped_cooldown"
    | "skipped_unfinished"
    | "no_key"
    | "failed";
  oldFingerprint?: string | undefined;
  newFingerprint?: string | undefined;
  cooldownUntil?: string | undefined;
  /** ISO-8601 UTC: the next scheduled rotation, for those not rotated now. */
  nextRotationAt?: string | undefined;
  /** Past its scheduled rotation plus grace, and not rotated by this run. */
  overdue: boolean;
  error?: { code: string; message: string } | undefined;
  /** The deliveries the rotation made to the principal's targets (as `rotateKey` reports them). */
  deliveries?: DeliveryOutcome[] | undefined;
}

/** The report of one due run. */
export interface DueReport {
  dryRun: boolean;
  /** ISO-8601 UTC. */
  checkedAt: string;
  results: DueOutcome[];
  /** The earliest next scheduled rotation among the principals (when to look again). */
  nextRotationAt?: string | undefined;
}

/** Options of {@link rotateDue}. */
export interface RotateDueOptions {
  rekey: Rekey;
  store: CredentialStore;
  clock: Clock;
  /** The `--as` the rekey was made with, so the same records are seen. */
  actAs?: string | undefined;
  dryRun?: boolean;
  /** Rotations at once (default 4, gentle on the faucet). */
  concurrency?: number;
  events?: ScheduleEventSink;
  /** Called after each rotation attempt (progress bars). */
  onRotated?: (outcome: DueOutcome) => void;
  /** Called (and awaited) once the due principals are known, before any is rotated. */
  onPlan?: (dueCount: number) => void | Promise<void>;
  signal?: AbortSignal;
}

/**
 * Rotates every principal of the profile whose policy says it is due and whose window is open,
 * through the engine's public `rotateKey`: its journal, locks and single-flight make a run safe
 * to repeat and to run on several replicas at once. Principals inside a cooldown or with an
 * unfinished rotation are skipped (reported, not rotated). Each rotation names the key it saw,
 * so a key another process rotated meanwhile comes back `shared` instead of rotated twice.
 * Failures are reported per principal and as events; nothing here throws for one principal.
 * @throws RekeyError STORE_* when the store cannot be read at all; NOT_FOUND when `actAs` names a
 *   principal the store holds no key for.
 */
export async function rotateDue(options: RotateDueOptions): Promise<DueReport> {
  const { rekey, store, clock } = options;
  const dryRun = options.dryRun === true;
  // `--as` naming a principal the store holds no key for: NOT_FOUND, as every operation says,
  // rather than a report of no policies.
  if (options.actAs !== undefined) await rekey.activePrincipal();
  const snapshot = await store.read();
  const view = viewOf(snapshot.data, rekey.profileName, await rekey.baseUrl(), {
    actAs: options.actAs,
  });
  const now = clock.now();
  const checkedAt = new Date(now).toISOString();
  const outcomes: DueOutcome[] = [];
  const toRotate: { outcome: DueOutcome; record: DeepReadonly<PrincipalRecord> }[] = [];
  for (const record of policyRecordsOf(view)) {
    const label = principalLabel(principalOfRecord(record.principal));
    const state = dueStateOfRecord(record, now);
    const base = { principal: record.principal, label, oldFingerprint: record.fingerprint };
    if (state === undefined || record.fingerprint === undefined) {
      outcomes.push({ ...base, result: "no_key", overdue: false });
      continue;
    }
    const waiting = { ...base, nextRotationAt: state.nextRotationAt, overdue: state.overdue };
    // An unfinished rotation is reported whether or not the key is due: someone should run
    // doctor --repair (or any rotation call) to finish it.
    if (record.intent !== undefined) {
      outcomes.push({ ...waiting, result: "skipped_unfinished" });
    } else if (!state.due) {
      outcomes.push({ ...waiting, result: "not_due" });
    } else if (record.cooldownUntil !== undefined && Date.parse(record.cooldownUntil) > now) {
      outcomes.push({
        ...waiting,
        result: "skipped_cooldown",
        cooldownUntil: record.cooldownUntil,
      });
    } else {
      const outcome: DueOutcome = { ...waiting, result: dryRun ? "would_rotate" : "failed" };
      outcomes.push(outcome);
      if (!dryRun) toRotate.push({ outcome, record });
    }
  }
  await options.onPlan?.(toRotate.length);
  await mapLimited(toRotate, options.concurrency ?? 4, async ({ outcome, record }) => {
    await rotateOne(options, record, outcome);
    options.onRotated?.(outcome);
  });
  for (const outcome of outcomes) {
    if (outcome.overdue && outcome.result !== "rotated" && outcome.result !== "shared") {
      await emit(options, {
        type: "key.overdue",
        at: checkedAt,
        faucet: view.faucet,
        principal: outcome.principal,
        oldFingerprint: outcome.oldFingerprint,
      });
    }
  }
  const next = outcomes
    .map((outcome) => outcome.nextRotationAt)
    .filter((at): at is string => at !== undefined && at > checkedAt)
    .sort()[0];
  return { dryRun, checkedAt, results: outcomes, nextRotationAt: next };
}

async function rotateOne(
  options: RotateDueOptions,
  record: DeepReadonly<PrincipalRecord>,
  outcome: DueOutcome,
): Promise<void> {
  const at = () => new Date(options.clock.now()).toISOString();
  const { faucet } = record;
  const fingerprint = record.fingerprint as string;
  try {
    const result = await options.rekey.rotateKey({
      target: principalOfRecord(outcome.principal),
      expectedFingerprint: fingerprint,
      ...(options.signal ? { signal: options.signal } : {}),
    });
    outcome.result = result.shared ? "shared" : "rotated";
    outcome.newFingerprint = result.newFingerprint;
    outcome.cooldownUntil = result.cooldownUntil;
    if (result.deliveries !== undefined) outcome.deliveries = result.deliveries;
    // The new key's schedule, so a caller knows when to look again.
    outcome.nextRotationAt = dueStateOfRecord(
      { ...record, savedAt: result.rotatedAt },
      options.clock.now(),
    )?.nextRotationAt;
    outcome.overdue = false;
    if (!result.shared) {
      await emit(options, {
        type: "rotation.succeeded",
        at: result.rotatedAt,
        faucet,
        principal: outcome.principal,
        oldFingerprint: result.oldFingerprint,
        newFingerprint: result.newFingerprint,
        cooldownUntil: result.cooldownUntil,
      });
    }
    // The rotation stands, but a consumer still holds the old key: an alert of its own.
    for (const delivery of result.deliveries ?? []) {
      if (delivery.status !== "failed") continue;
      await emit(options, {
        type: "delivery.failed",
        at: at(),
        faucet,
        principal: outcome.principal,
        newFingerprint: delivery.fingerprint,
        target: delivery.target,
        errorCode: delivery.error?.code,
        message: `${delivery.description}: ${delivery.error?.message ?? "delivery failed"}`,
      });
    }
  } catch (error) {
    // Rotated by someone else (by hand, or another replica) between the read and now.
    if (isRekeyError(error, "COOLDOWN_ACTIVE")) {
      outcome.result = "skipped_cooldown";
      const until = error.details.cooldownUntil;
      outcome.cooldownUntil = typeof until === "string" ? until : undefined;
      return;
    }
    const rekeyError = toRekeyError(error);
    outcome.result = "failed";
    outcome.error = { code: rekeyError.code, message: rekeyError.message };
    await emit(options, {
      type: rekeyError.code === "KEY_LOST" ? "key.lost" : "rotation.failed",
      at: at(),
      faucet,
      principal: outcome.principal,
      oldFingerprint: fingerprint,
      errorCode: rekeyError.code,
      message: rekeyError.message,
    });
  }
}

async function emit(options: RotateDueOptions, event: ScheduleEvent): Promise<void> {
  await options.events?.emit(event);
}
