/** Millisatoshis per unit of each BOLT11 amount multiplier (amounts are in bitcoin). */
const MSAT_PER_UNIT: Record<string, bigint> = {
  "": 100_000_000_000n,
  m: 100_000_000n,
  u: 100_000n,
  n: 100n,
};

const HUMAN_READABLE_PART = /^ln(bcrt|bc|tbs|tb|sb)(?:(\d+)([munp]?))?$/;
const BECH32_DATA = /^[qpzry9x8gf2tvdw0s3jn54khce6mua7l]{7,}$/;

/** What the sandbox reads from a BOLT11 invoice. */
export type ParsedInvoice =
  | { valid: true; amountSats: number | undefined }
  | { valid: false; reason: string };

/**
 * Reads the amount from a BOLT11 invoice's human-readable part. The sandbox pays nothing, so
 * it checks the shape (prefix, amount, bech32 data) but not the checksum or signature.
 * Amounts with millisatoshi precision are rounded up to whole satoshis.
 */
export function parseInvoice(invoice: string): ParsedInvoice {
  const text = invoice.trim();
  if (text !== text.toLowerCase() && text !== text.toUpperCase()) {
    return { valid: false, reason: "invoice mixes upper and lower case" };
  }
  const lower = text.toLowerCase();
  const separator = lower.lastIndexOf("1");
  const match = HUMAN_READABLE_PART.exec(lower.slice(0, separator));
  if (separator < 0 || !match || !BECH32_DATA.test(lower.slice(separator + 1))) {
    return { valid: false, reason: "invoice is not a BOLT11 payment request" };
  }
  const [, , digits, multiplier = ""] = match;
  if (digits === undefined) return { valid: true, amountSats: undefined };
  const amount = BigInt(digits);
  const msat = multiplier === "p" ? amount / 10n : amount * (MSAT_PER_UNIT[multiplier] ?? 0n);
  if (multiplier === "p" && amount % 10n !== 0n) {
    return { valid: false, reason: "invoice amount is finer than a millisatoshi" };
  }
  const sats = (msat + 999n) / 1000n;
  if (sats <= 0n || sats > BigInt(Number.MAX_SAFE_INTEGER)) {
    return { valid: false, reason: "invoice amount is out of range" };
  }
  return { valid: true, amountSats: Number(sats) };
}
