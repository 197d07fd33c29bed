import type { Clock } from "../clock.js";
import type { ScheduleEvent, ScheduleEventSink } from "./events.js";

/**
 * Signs a notification body. Notifications are signed the same way as key-delivery webhooks
 * (`Rekey-Signature: t=<unix seconds>,v1=<hex HMAC-SHA256 of "<t>.<body>">`); the signer is
 * passed in so there is one implementation of that scheme, core's delivery signer.
 */
export interface WebhookSigner {
  /** The header that carries the signature ("Rekey-Signature"). */
  readonly header: string;
  sign(body: string, timestampSeconds: number): string;
}

/** Options of {@link createWebhookNotifier}. */
export interface WebhookNotifierOptions {
  url: string;
  signer: WebhookSigner;
  clock: Clock;
  /** Attempts per event, the first included (default 4). */
  attempts?: number;
  /** The first wait between attempts, doubled each time (default 1 s). */
  baseDelayMs?: number;
  /** Per-attempt timeout (default 10 s). */
  timeoutMs?: number;
  /** The wait between attempts; tests pass one that does not wait. */
  sleep?: (ms: number) => Promise<void>;
  fetch?: typeof fetch;
  /** Told when an event could not be delivered after every attempt (logs, metrics). */
  onGivenUp?: (event: ScheduleEvent, reason: string) => void;
}

/**
 * A sink that POSTs each event as JSON to a notification webhook, signed, retrying a network
 * error or a 5xx (or 429) with doubling waits; any 2xx is delivered, another 4xx is not retried
 * (the receiver refused it). It never throws: a receiver that is down must not stop rotations.
 */
export function createWebhookNotifier(options: WebhookNotifierOptions): ScheduleEventSink {
  const attempts = options.attempts ?? 4;
  const baseDelayMs = options.baseDelayMs ?? 1000;
  const timeoutMs = options.timeoutMs ?? 10_000;
  const sleep =
    options.sleep ?? ((ms: number) => new Promise<void>((resolve) => setTimeout(resolve, ms)));
  const send = options.fetch ?? fetch;

  async function attempt(body: string): Promise<{ done: boolean; reason: string }> {
    const timestamp = Math.floor(options.clock.now() / 1000);
    try {
      const response = await send(options.url, {
        method: "POST",
        headers: {
          "content-type": "application/json",
          [options.signer.header]: options.signer.sign(body, timestamp),
        },
        body,
        redirect: "error",
        signal: AbortSignal.timeout(timeoutMs),
      });
      await response.body?.cancel();
      if (response.ok) return { done: true, reason: "" };
      const retryable = response.status >= 500 || response.status === 429;
      return { done: !retryable, reason: `HTTP ${response.status}` };
    } catch (error) {
      return { done: false, reason: error instanceof Error ? error.name : "network error" };
    }
  }

  return {
    async emit(event) {
      const body = JSON.stringify({ event });
      let reason = "";
      for (let index = 0; index < attempts; index++) {
        if (index > 0) await sleep(baseDelayMs * 2 ** (index - 1));
        const result = await attempt(body);
        if (result.done && result.reason === "") return;
        reason = result.reason;
        if (result.done) break;
      }
      options.onGivenUp?.(event, reason);
    },
  };
}
