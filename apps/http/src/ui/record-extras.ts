import type { DeepReadonly, PrincipalRecord } from "@rekey/core";
import { html, type SafeHtml } from "./html.js";

/**
 * What other features add to a principal's record, rendered when present: delivery targets
 * (`deliveries`: the fingerprint each holds, or its error) and a rotation policy (`policy`: a
 * maximum key age and the next scheduled rotation). The console reads them loosely, field by
 * field, so that it shows what a store holds without depending on the modules that write them;
 * this is the one place that knows their shape.
 */

type Loose = Record<string, unknown>;

const asObject = (value: unknown): Loose | undefined =>
  typeof value === "object" && value !== null && !Array.isArray(value)
    ? (value as Loose)
    : undefined;
const asString = (value: unknown): string | undefined =>
  typeof value === "string" ? value : undefined;
const asNumber = (value: unknown): number | undefined =>
  typeof value === "number" && Number.isFinite(value) ? value : undefined;

export interface DeliveryView {
  target: string;
  state: "current" | "stale" | "failing" | "pending";
  detail?: string;
}

/** The record's delivery targets and how each stands against the current fingerprint. */
export function deliveriesOf(record: DeepReadonly<PrincipalRecord>): DeliveryView[] {
  const raw = (record as unknown as Loose).deliveries;
  const list = Array.isArray(raw) ? raw : Object.values(asObject(raw) ?? {});
  return list.flatMap((item): DeliveryView[] => {
    const entry = asObject(item);
    if (entry === undefined) return [];
    const target =
      asString(entry.name) ??
      asString(entry.label) ??
      asString(entry.path) ??
      asString(entry.url) ??
      asString(entry.kind) ??
      asString(entry.type) ??
      "target";
    const delivered = asString(entry.fingerprint) ?? asString(entry.deliveredFingerprint);
    const error = asString(entry.error) ?? asString(entry.lastError);
    const status = asString(entry.status) ?? asString(entry.state);
    if (
      status === "failed" ||
      status === "failing" ||
      (error !== undefined && delivered !== record.fingerprint)
    ) {
      return [{ target, state: "failing", ...(error === undefined ? {} : { detail: error }) }];
    }
    if (status === "pending") return [{ target, state: "pending" }];
    if (delivered !== undefined && delivered === record.fingerprint)
      return [{ target, state: "current" }];
    return [{ target, state: "stale", ...(delivered === undefined ? {} : { detail: delivered }) }];
  });
}

export interface PolicyView {
  /** Milliseconds. */
  maxAgeMs?: number;
  /** ISO-8601. */
  nextRotationAt?: string;
}

/** The record's rotation policy, if any. */
export function policyOf(record: DeepReadonly<PrincipalRecord>): PolicyView {
  const loose = record as unknown as Loose;
  const policy = asObject(loose.policy) ?? asObject(loose.schedule) ?? {};
  const days = asNumber(policy.maxAgeDays);
  const maxAgeMs =
    asNumber(policy.maxAgeMs) ?? (days === undefined ? undefined : days * 86_400_000);
  const nextRotationAt =
    asString(policy.nextRotationAt) ?? asString(policy.nextAt) ?? asString(loose.nextRotationAt);
  return {
    ...(maxAgeMs === undefined ? {} : { maxAgeMs }),
    ...(nextRotationAt === undefined ? {} : { nextRotationAt }),
  };
}

/** "current 2 · stale 1 · failing 0", coloured; "none" without targets. */
export function renderDeliverySummary(deliveries: readonly DeliveryView[]): SafeHtml {
  if (deliveries.length === 0) return html`<span class="muted">none</span>`;
  const count = (state: DeliveryView["state"]) =>
    deliveries.filter((item) => item.state === state).length;
  const stale = count("stale");
  const failing = count("failing");
  return html`<span class="ok">${count("current")} current</span>${stale > 0 ? html` · <span class="warn">${stale} stale</span>` : ""}${failing > 0 ? html` · <span class="bad">${failing} failing</span>` : ""}`;
}

/** The key age class against the policy's maximum: "" (fine), "warn" (past 80 %), "bad" (past). */
export function ageClass(ageMs: number, policy: PolicyView): string {
  if (policy.maxAgeMs === undefined) return "";
  if (ageMs >= policy.maxAgeMs) return "bad";
  return ageMs >= policy.maxAgeMs * 0.8 ? "warn" : "";
}
