import { randomUUID } from "node:crypto";
import { validateBaseUrl } from "../client/base-url.js";
import { RekeyError } from "../errors.js";
import type { DeliveryEnvironment, DeliveryPayload } from "./delivery-payload.js";
import { inspectTargetFile, readTargetFile } from "./target-file.js";
import { DEFAULT_DELIVERY_TIMEOUT_MS } from "./target-schema.js";
import { signWebhook, WEBHOOK_SIGNATURE_HEADER } from "./webhook-signature.js";

/**
 * The `webhook` target: POSTs a signed `key.rotated` event (see webhook-signature.ts) that
 * tells a service its key changed, with fingerprints, principal and cooldown, never the key:
 * the service then pulls the key the way it is allowed to. HTTPS, or http to loopback only;
 * redirects are not followed (a redirect could send the event anywhere); 2xx means delivered.
 */

/** The JSON body a receiver gets. */
export interface WebhookEvent {
  id: string;
  type: "key.rotated";
  createdAt: string;
  principal: string;
  faucet: string;
  name?: string;
  newFingerprint: string;
  oldFingerprint?: string;
  rotatedAt?: string;
  cooldownUntil?: string;
  requestId?: string;
}

/**
 * Checks a webhook URL: https anywhere, http only to loopback, no credentials in it.
 * @throws RekeyError CONFIG_INVALID otherwise.
 */
export function assertWebhookUrl(url: string): void {
  validateBaseUrl(url, "The webhook URL");
}

/** The event for a payload: everything but the key. */
export function webhookEventOf(payload: DeliveryPayload, createdAt: string): WebhookEvent {
  const event: WebhookEvent = {
    id: randomUUID(),
    type: "key.rotated",
    createdAt,
    principal: payload.principal,
    faucet: payload.faucet,
    newFingerprint: payload.fingerprint,
  };
  if (payload.name !== undefined) event.name = payload.name;
  if (payload.rotation) {
    event.oldFingerprint = payload.rotation.oldFingerprint;
    event.rotatedAt = payload.rotation.rotatedAt;
    event.requestId = payload.rotation.requestId;
  }
  if (payload.cooldownUntil !== undefined) event.cooldownUntil = payload.cooldownUntil;
  return event;
}

/**
 * Sends the signed event and waits for a 2xx.
 * @throws RekeyError CONFIG_INVALID (URL, secret file); UPSTREAM_TIMEOUT; UPSTREAM_UNAVAILABLE
 *   (down, a non-2xx status, a redirect).
 */
export async function deliverToWebhook(
  target: { url: string; secretFile: string; timeoutMs?: number | undefined },
  payload: DeliveryPayload,
  environment: DeliveryEnvironment,
): Promise<void> {
  assertWebhookUrl(target.url);
  const stats = await inspectTargetFile(target.secretFile, 0o077);
  if (stats === undefined) {
    throw new RekeyError(
      "CONFIG_INVALID",
      `The webhook secret file ${target.secretFile} does not exist`,
      {
        hint: `openssl rand -hex 32 > ${target.secretFile} && chmod 600 ${target.secretFile}`,
      },
    );
  }
  const secret = await readTargetFile(target.secretFile);
  const nowMs = environment.clock.now();
  const body = JSON.stringify(webhookEventOf(payload, new Date(nowMs).toISOString()));
  const signature = signWebhook({ secret, body, timestamp: Math.floor(nowMs / 1000) });
  const timeoutMs = target.timeoutMs ?? DEFAULT_DELIVERY_TIMEOUT_MS;
  const send = environment.fetch ?? fetch;
  let response: Response;
  try {
    response = await send(target.url, {
      method: "POST",
      headers: { "content-type": "application/json", [WEBHOOK_SIGNATURE_HEADER]: signature },
      body,
      redirect: "manual",
      signal: AbortSignal.timeout(timeoutMs),
    });
  } catch (error) {
    const name = (error as Error | undefined)?.name;
    if (name === "TimeoutError" || name === "AbortError") {
      throw new RekeyError(
        "UPSTREAM_TIMEOUT",
        `The webhook ${target.url} did not answer within ${timeoutMs} ms`,
        { cause: error },
      );
    }
    throw new RekeyError("UPSTREAM_UNAVAILABLE", `The webhook ${target.url} cannot be reached`, {
      cause: error,
    });
  }
  // The reply body is not needed: dropped unread (a receiver could send gigabytes), which
  // also releases the connection.
  await response.body?.cancel().catch(() => undefined);
  if (response.status >= 300 && response.status < 400) {
    throw new RekeyError(
      "UPSTREAM_UNAVAILABLE",
      `The webhook ${target.url} answered a redirect (${response.status}), which rekey does not follow`,
      { hint: "Configure the final URL.", details: { upstreamStatus: response.status } },
    );
  }
  if (!response.ok) {
    throw new RekeyError(
      "UPSTREAM_UNAVAILABLE",
      `The webhook ${target.url} answered ${response.status}`,
      {
        details: { upstreamStatus: response.status },
      },
    );
  }
}
