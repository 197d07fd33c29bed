import { createHmac, timingSafeEqual } from "node:crypto";
import { RekeyError } from "../errors.js";

/**
 * Signing of rekey's outgoing webhooks, in the style of Stripe's `Stripe-Signature`: the
 * header `Rekey-Signature: t=<unix seconds>,v1=<hex HMAC-SHA256 of "<t>.<body>">`. The
 * timestamp is inside the MAC, so a receiver that checks it against its own clock refuses a
 * replay of a captured request outside the tolerance window.
 */

/** The header that carries the signature. */
export const WEBHOOK_SIGNATURE_HEADER = "Rekey-Signature";
/** Default replay window of {@link verifyWebhookSignature}: five minutes, as Stripe's. */
export const DEFAULT_WEBHOOK_TOLERANCE_SECONDS = 300;
// A secret shorter than this is guessable offline from one signed request.
const MIN_SECRET_BYTES = 16;

/** The parts of a signature: what is signed, and what to send. */
export interface WebhookSignatureInput {
  /** The shared secret, as read from the secret file (surrounding whitespace ignored). */
  secret: string;
  /** The exact request body, as sent. */
  body: string;
  /** Unix seconds of the signing time. */
  timestamp: number;
}

function checkedSecret(secret: string): string {
  const trimmed = secret.trim();
  if (Buffer.byteLength(trimmed, "utf8") < MIN_SECRET_BYTES) {
    throw new RekeyError(
      "CONFIG_INVALID",
      `A webhook secret must be at least ${MIN_SECRET_BYTES} bytes`,
      { hint: "Generate one with: openssl rand -hex 32 > secret-file && chmod 600 secret-file" },
    );
  }
  return trimmed;
}

function mac(secret: string, timestamp: number, body: string): string {
  return createHmac("sha256", secret).update(`${timestamp}.${body}`, "utf8").digest("hex");
}

/**
 * The `Rekey-Signature` header value for a body.
 * @throws RekeyError CONFIG_INVALID for a secret shorter than 16 bytes or a bad timestamp.
 */
export function signWebhook(input: WebhookSignatureInput): string {
  if (!Number.isSafeInteger(input.timestamp) || input.timestamp < 0) {
    throw new RekeyError("CONFIG_INVALID", "A webhook timestamp is whole unix seconds");
  }
  const secret = checkedSecret(input.secret);
  return `t=${input.timestamp},v1=${mac(secret, input.timestamp, input.body)}`;
}

/** What a receiver checks a request with. */
export interface WebhookVerifyInput {
  secret: string;
  /** The raw request body, byte for byte as received (not re-serialised JSON). */
  body: string;
  /** The `Rekey-Signature` header value. */
  header: string | null | undefined;
  /** The receiver's time, unix seconds. */
  now: number;
  /** Accept timestamps at most this far from `now`; default 300 seconds. */
  toleranceSeconds?: number;
}

/**
 * Checks a received webhook: a well-formed header, a timestamp within the replay window, and
 * one `v1` signature that matches (compared in constant time; several `v1` are allowed so a
 * sender can roll its secret).
 * @returns the signed timestamp.
 * @throws RekeyError UNAUTHORIZED for a missing, malformed, stale or wrong signature;
 *   CONFIG_INVALID for a secret shorter than 16 bytes.
 */
export function verifyWebhookSignature(input: WebhookVerifyInput): number {
  const secret = checkedSecret(input.secret);
  const tolerance = input.toleranceSeconds ?? DEFAULT_WEBHOOK_TOLERANCE_SECONDS;
  const refuse = (why: string) =>
    new RekeyError("UNAUTHORIZED", `Webhook signature refused: ${why}`);
  if (!input.header) throw refuse(`no ${WEBHOOK_SIGNATURE_HEADER} header`);
  let timestamp: number | undefined;
  const signatures: string[] = [];
  for (const part of input.header.split(",")) {
    const [name, value, ...rest] = part.trim().split("=");
    if (value === undefined || rest.length > 0) throw refuse("malformed header");
    if (name === "t") {
      if (!/^\d{1,12}$/.test(value) || timestamp !== undefined) throw refuse("malformed timestamp");
      timestamp = Number(value);
    } else if (name === "v1") {
      if (!/^[0-9a-f]{64}$/.test(value)) throw refuse("malformed v1 signature");
      signatures.push(value);
    }
    // Unknown schemes (a future v2) are ignored, as Stripe's receivers do.
  }
  if (timestamp === undefined) throw refuse("no timestamp");
  if (signatures.length === 0) throw refuse("no v1 signature");
  if (Math.abs(input.now - timestamp) > tolerance) {
    throw refuse(`timestamp outside the ${tolerance}-second window (a replay, or a skewed clock)`);
  }
  const expected = Buffer.from(mac(secret, timestamp, input.body), "hex");
  const matches = signatures.some((signature) =>
    timingSafeEqual(Buffer.from(signature, "hex"), expected),
  );
  if (!matches) throw refuse("signature does not match");
  return timestamp;
}
