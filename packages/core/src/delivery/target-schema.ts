import { z } from "zod";
import { lazily } from "../lazily.js";

/**
 * Delivery targets: the places outside rekey that use a principal's key, kept in the store on
 * the principal's record (`deliveries`). A target never holds a key: a webhook names the file
 * its secret is in, a store target names a store, not its password.
 */

/** The kinds of target, one module each in `delivery/`. */
export const DELIVERY_KINDS = ["lightning-wallet", "dotenv", "exec", "store", "webhook"] as const;
export type DeliveryKind = (typeof DELIVERY_KINDS)[number];

/** A target's id: `<kind>-<n>`, unique on its record. */
export const DELIVERY_ID_PATTERN = /^(lightning-wallet|dotenv|exec|store|webhook)-[1-9]\d{0,5}$/;

/** Default and upper bound of how long an exec command or a webhook may take. */
export const DEFAULT_DELIVERY_TIMEOUT_MS = 30_000;
export const MAX_DELIVERY_TIMEOUT_MS = 10 * 60_000;

/** The variable names a dotenv file can hold. */
export const ENV_NAME_PATTERN = /^[A-Za-z_][A-Za-z0-9_]{0,127}$/;

// Built on first use (`lazily`): only a store whose records have delivery targets, and `rekey
// deliver add`, parse one, and building these schemas was the largest part of loading the store
// schema for every command (bench/README.md, "Cold start").
function buildDeliveryTargetSchema() {
  const isoUtc = z.iso.datetime();
  const absolutePath = z
    .string()
    .min(2)
    .max(4096)
    .refine((path) => path.startsWith("/") && !path.includes("\0"), "an absolute path");
  const timeoutMs = z.number().int().min(100).max(MAX_DELIVERY_TIMEOUT_MS);

  /**
   * Where a target stands, written by the delivery journal: `pending` before a delivery starts
   * (so a crash leaves a trace), then `delivered` or `failed`. `deliveredFingerprint` is the
   * newest key the target is known to hold.
   */
  const deliveryStateSchema = z.strictObject({
    status: z.enum(["pending", "delivered", "failed"]),
    /** The key this attempt delivers (pending/failed) or delivered. */
    fingerprint: z.string().min(1),
    deliveredFingerprint: z.string().min(1).optional(),
    /** The rotation whose key this is, when a rotation started the delivery. */
    requestId: z.string().min(1).optional(),
    at: isoUtc,
    /** Failed attempts at this fingerprint, for the back-off. */
    attempts: z.number().int().nonnegative(),
    nextAttemptAt: isoUtc.optional(),
    error: z.strictObject({ code: z.string(), message: z.string().max(2000) }).optional(),
  });

  const common = {
    id: z.string().regex(DELIVERY_ID_PATTERN),
    state: deliveryStateSchema.optional(),
  };

  return z.discriminatedUnion("kind", [
    z.strictObject({ ...common, kind: z.literal("lightning-wallet"), path: absolutePath }),
    z.strictObject({
      ...common,
      kind: z.literal("dotenv"),
      path: absolutePath,
      variable: z.string().regex(ENV_NAME_PATTERN),
    }),
    z.strictObject({
      ...common,
      kind: z.literal("exec"),
      command: z.array(z.string().min(1).max(4096)).min(1).max(64),
      timeoutMs: timeoutMs.optional(),
    }),
    z.strictObject({ ...common, kind: z.literal("store"), location: z.string().min(1).max(4096) }),
    z.strictObject({
      ...common,
      kind: z.literal("webhook"),
      url: z.url(),
      secretFile: absolutePath,
      timeoutMs: timeoutMs.optional(),
    }),
  ]);
}

/** Schema of one delivery target (see {@link DeliveryTarget}). */
export const deliveryTargetSchema = lazily(buildDeliveryTargetSchema);

/** One place a principal's key is delivered to after each rotation. */
export type DeliveryTarget = z.infer<ReturnType<typeof buildDeliveryTargetSchema>>;
/**
 * Where a target stands, written by the delivery journal: `pending` before a delivery starts
 * (so a crash leaves a trace), then `delivered` or `failed`.
 */
export type DeliveryState = NonNullable<DeliveryTarget["state"]>;
/** A target as `rekey deliver add` describes it: no id, no state yet. */
export type DeliveryTargetSpec = DeliveryTarget extends infer Target
  ? Target extends DeliveryTarget
    ? Omit<Target, "id" | "state">
    : never
  : never;

/** A short description of a target for lists and messages (no secret in any of them). */
export function describeTarget(target: DeliveryTargetSpec): string {
  switch (target.kind) {
    case "lightning-wallet":
      return `lightning-wallet ${target.path}`;
    case "dotenv":
      return `dotenv ${target.path} (${target.variable})`;
    case "exec":
      return `exec ${target.command.join(" ")}`;
    case "store":
      return `store ${target.location}`;
    case "webhook":
      return `webhook ${target.url}`;
  }
}
