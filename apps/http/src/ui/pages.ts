import type {
  AuditChainVerdict,
  AuditEntry,
  DeepReadonly,
  PrincipalRecord,
  RotationPlan,
} from "@rekey/core";
import { html, type SafeHtml } from "./html.js";
import {
  ageClass,
  type DeliveryView,
  deliveriesOf,
  type PolicyView,
  policyOf,
  renderDeliverySummary,
} from "./record-extras.js";

/** The console's pages, server-rendered. Fingerprints only: no page ever holds a key or token. */

/** A principal record as the console lists it. */
export interface PrincipalRow {
  /** The record's principal: "operator:12", "agent:7". */
  principal: string;
  /** Its path segment under /ui/principals/: "operator", "agent-7". */
  slug: string;
  /** "operator" or "agent 7". */
  label: string;
  record: DeepReadonly<PrincipalRecord>;
}

export interface PageContext {
  title: string;
  now: number;
  /** Present once signed in. */
  session?: { name: string; csrf: string; canRotate: boolean };
  /** Subscribe to /ui/events and refresh on a change. */
  live?: boolean;
}

export function layout(context: PageContext, body: SafeHtml): string {
  const { session } = context;
  return `<!doctype html>${html`<html lang="en"><head><meta charset="utf-8"><meta name="viewport" content="width=device-width, initial-scale=1"><title>${context.title} · rekey</title><link rel="stylesheet" href="/ui/assets/console.css"><script src="/ui/assets/console.js" defer></script></head><body data-server-now="${context.now}"${context.live === true ? html` data-live="1"` : ""}><header><a class="brand" href="/ui">rekey console</a>${session === undefined ? "" : html`<a href="/ui">Principals</a><span class="who">Signed in as ${session.name}</span><form method="post" action="/ui/logout"><input type="hidden" name="csrf" value="${session.csrf}"><button class="secondary" type="submit">Sign out</button></form>`}<p id="live-status" role="status" aria-live="polite"></p></header><main>${body}</main></body></html>`}`;
}

export function formatDuration(ms: number): string {
  const minutes = Math.floor(ms / 60_000);
  if (minutes < 1) return "under a minute";
  if (minutes < 60) return `${minutes} min`;
  const hours = Math.floor(minutes / 60);
  if (hours < 48) return `${hours} h ${minutes % 60} min`;
  return `${Math.floor(hours / 24)} days`;
}

function countdownText(ms: number): string {
  if (ms <= 0) return "ended";
  const total = Math.ceil(ms / 1000);
  return `${Math.floor(total / 60)} min ${String(total % 60).padStart(2, "0")} s left`;
}

/** The cooldown cell: a ticking countdown (console.js), or "none". */
export function renderCooldown(cooldownUntil: string | undefined, now: number): SafeHtml {
  const endsAt = cooldownUntil === undefined ? Number.NaN : Date.parse(cooldownUntil);
  if (!(endsAt > now)) return html`<span class="muted">none</span>`;
  return html`<time class="warn" datetime="${cooldownUntil}" data-countdown title="withdrawals blocked until ${cooldownUntil}">${countdownText(endsAt - now)}</time>`;
}

function renderAge(
  record: DeepReadonly<PrincipalRecord>,
  policy: PolicyView,
  now: number,
): SafeHtml {
  if (record.savedAt === undefined) return html`<span class="muted">no key</span>`;
  const age = Math.max(0, now - Date.parse(record.savedAt));
  const className = ageClass(age, policy);
  const limit =
    policy.maxAgeMs === undefined ? "" : ` (policy: at most ${formatDuration(policy.maxAgeMs)})`;
  return html`<span class="${className}" title="saved ${record.savedAt}${limit}">${formatDuration(age)}</span>`;
}

const fingerprintOf = (record: DeepReadonly<PrincipalRecord>) =>
  record.fingerprint === undefined
    ? html`<span class="muted">none</span>`
    : html`<code data-fingerprint>${record.fingerprint}</code>`;

export function principalsPage(context: PageContext, rows: readonly PrincipalRow[]): string {
  const extras = rows.map((row) => ({
    deliveries: deliveriesOf(row.record),
    policy: policyOf(row.record, context.now),
  }));
  const showDeliveries = extras.some((extra) => extra.deliveries.length > 0);
  const showSchedule = extras.some((extra) => extra.policy.nextRotationAt !== undefined);
  const canRotate = context.session?.canRotate === true;
  const body = html`<h1>Principals</h1>
<table><caption class="muted">${rows.length} principals; key ages, cooldowns and fingerprints from the store</caption>
<thead><tr><th scope="col">Principal</th><th scope="col">Name</th><th scope="col">Fingerprint</th><th scope="col">Key age</th><th scope="col">Cooldown</th>${showDeliveries ? html`<th scope="col">Deliveries</th>` : ""}${showSchedule ? html`<th scope="col">Next rotation</th>` : ""}${canRotate ? html`<th scope="col"><span class="muted">Action</span></th>` : ""}</tr></thead>
<tbody>${rows.map((row, index) => {
    const extra = extras[index] ?? { deliveries: [], policy: {} };
    return html`<tr data-principal="${row.principal}"><td><a href="/ui/principals/${row.slug}">${row.label}</a></td><td>${row.record.name ?? ""}</td><td>${fingerprintOf(row.record)}</td><td>${renderAge(row.record, extra.policy, context.now)}</td><td>${renderCooldown(row.record.cooldownUntil, context.now)}</td>${showDeliveries ? html`<td>${renderDeliverySummary(extra.deliveries)}</td>` : ""}${showSchedule ? html`<td>${extra.policy.nextRotationAt ?? ""}</td>` : ""}${canRotate ? html`<td>${row.record.key === undefined ? "" : html`<a class="button" href="/ui/principals/${row.slug}/rotate" aria-label="Rotate ${row.label}">Rotate</a>`}</td>` : ""}</tr>`;
  })}</tbody></table>`;
  return layout({ ...context, live: true }, body);
}

function renderDeliveries(
  deliveries: readonly DeliveryView[],
  retry?: { slug: string; csrf: string },
): SafeHtml {
  if (deliveries.length === 0) return html`<p class="muted">No delivery targets.</p>`;
  const classOf = { current: "ok", stale: "warn", failing: "bad" } as const;
  const behind = deliveries.some((item) => item.state !== "current");
  return html`<ul>${deliveries.map((item) => html`<li data-target="${item.target}">${item.target} <span class="muted">${item.description}</span>: <span class="${classOf[item.state]}">${item.state}</span>${item.detail === undefined ? "" : html` <span class="muted">(${item.detail})</span>`}</li>`)}</ul>${behind && retry !== undefined ? html`<form method="post" action="/ui/principals/${retry.slug}/deliveries/retry"><input type="hidden" name="csrf" value="${retry.csrf}"><button type="submit">Retry the deliveries that do not hold the current key</button></form>` : ""}`;
}

function renderVerdict(verdict: AuditChainVerdict): SafeHtml {
  return verdict.ok
    ? html`<p class="ok" data-chain="verified">Hash chain verified: all ${verdict.count} entries of the audit log link up.</p>`
    : html`<p class="bad" data-chain="broken">Hash chain broken at entry ${verdict.brokenAt}: ${verdict.reason}. Entries from there on cannot be trusted.</p>`;
}

export function principalPage(
  context: PageContext,
  row: PrincipalRow,
  history: { entries: readonly AuditEntry[]; verdict: AuditChainVerdict },
  notice?: SafeHtml,
): string {
  const { record } = row;
  const policy = policyOf(record, context.now);
  const canRotate = context.session?.canRotate === true && record.key !== undefined;
  const last = record.lastRotation;
  const body = html`${notice ?? ""}<h1>${row.label}${record.name === undefined ? "" : html` · ${record.name}`}</h1>
<table><tbody>
<tr><th scope="row">Fingerprint</th><td>${fingerprintOf(record)}</td></tr>
<tr><th scope="row">Key age</th><td>${renderAge(record, policy, context.now)}</td></tr>
<tr><th scope="row">Cooldown</th><td>${renderCooldown(record.cooldownUntil, context.now)}</td></tr>
<tr><th scope="row">Last rotation</th><td>${last === undefined ? html`<span class="muted">never</span>` : html`${last.rotatedAt} by ${last.surface}: <code>${last.oldFingerprint}</code> → <code>${last.newFingerprint}</code>${last.verified ? "" : html` <span class="warn">(not verified)</span>`}`}</td></tr>
${policy.nextRotationAt === undefined ? "" : html`<tr><th scope="row">Next scheduled rotation</th><td>${policy.nextRotationAt}</td></tr>`}
${record.intent === undefined ? "" : html`<tr><th scope="row">Unfinished rotation</th><td class="warn">started ${record.intent.startedAt} (${record.intent.phase}); the next rekey process resolves it</td></tr>`}
</tbody></table>
${canRotate ? html`<p><a class="button" href="/ui/principals/${row.slug}/rotate">Rotate ${row.label}</a></p>` : ""}
<h2>Deliveries</h2>${renderDeliveries(deliveriesOf(record), canRotate && context.session ? { slug: row.slug, csrf: context.session.csrf } : undefined)}
<h2>Audit timeline</h2>${renderVerdict(history.verdict)}
${history.entries.length === 0 ? html`<p class="muted">No audit entries for this principal.</p>` : html`<ol class="timeline">${[...history.entries].reverse().map((entry) => html`<li><time datetime="${entry.at}">${entry.at}</time> · <strong>${entry.action}</strong> <span class="${entry.outcome === "success" ? "ok" : entry.outcome === "failure" || entry.outcome === "key_lost" ? "bad" : "warn"}">${entry.outcome}</span> via ${entry.surface}${entry.newFingerprint === undefined ? "" : html` · <code>${entry.oldFingerprint ?? "none"}</code> → <code>${entry.newFingerprint}</code>`}${entry.errorCode === undefined ? "" : html` · ${entry.errorCode}`}<br><span class="muted">entry ${entry.seq}, hash <code>${entry.hash.slice(0, 16)}</code></span></li>`)}</ol>`}`;
  return layout({ ...context, live: true }, body);
}

export function rotatePage(context: PageContext, row: PrincipalRow, plan: RotationPlan): string {
  const minutes = plan.cooldownMinutes;
  const body = html`<h1>Rotate ${row.label}${row.record.name === undefined ? "" : html` · ${row.record.name}`}?</h1>
<div class="confirm">
<p>The faucet issues a new key and <strong>the current key (<code>${plan.currentFingerprint}</code>) stops working at once</strong>. rekey stores the new key before anyone relies on it.</p>
<p>This starts a <strong>${minutes}-minute withdrawal cooldown</strong> for ${row.label}: no withdrawals until <time datetime="${plan.cooldownWouldEndAt}">${plan.cooldownWouldEndAt}</time> (if it rotates now).</p>
${plan.blockedByCooldown ? html`<p class="notice error">Refused for now: ${row.label} is still in the cooldown of its last rotation, until ${plan.currentCooldownUntil ?? "later"}.</p>` : html`<form method="post" action="/ui/principals/${row.slug}/rotate"><input type="hidden" name="csrf" value="${context.session?.csrf ?? ""}"><input type="hidden" name="expected" value="${plan.currentFingerprint}"><button type="submit">Rotate now and start the ${minutes}-minute cooldown</button> <a class="button secondary" href="/ui/principals/${row.slug}">Cancel</a></form>`}
</div>`;
  return layout(context, body);
}

export function loginPage(context: PageContext, error?: string): string {
  const body = html`<h1>Sign in</h1>
${error === undefined ? "" : html`<p class="notice error" role="alert">${error}</p>`}
<form method="post" action="/ui/login" class="confirm">
<label for="login-token">Login token (from the link rekey printed) or an API bearer token</label>
<input type="password" id="login-token" name="token" autocomplete="off" required>
<p><button type="submit">Sign in</button></p>
</form>`;
  return layout(context, body);
}

export function errorPage(context: PageContext, message: string): string {
  return layout(
    context,
    html`<h1>${context.title}</h1><p class="notice error" role="alert">${message}</p><p><a href="/ui">Back to the principals</a></p>`,
  );
}
