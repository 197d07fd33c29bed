import { RekeyError } from "../errors.js";
import { describeIssues } from "../store/schema.js";
import { assertStoreLocation } from "./store-target.js";
import {
  DELIVERY_KINDS,
  type DeliveryTarget,
  type DeliveryTargetSpec,
  deliveryTargetSchema,
} from "./target-schema.js";
import { assertWebhookUrl } from "./webhook-target.js";

/**
 * Checks a target a user asked for, before it is kept: its shape, an https (or loopback) webhook
 * URL, no password in a store location, and not the same place as a target already there.
 * @returns the target with its new id (`<kind>-<n>`).
 * @throws RekeyError INVALID_INPUT (shape, duplicate); CONFIG_INVALID (URL, password).
 */
export function newDeliveryTarget(
  spec: unknown,
  existing: readonly DeliveryTarget[],
): DeliveryTarget {
  const kind = (spec as { kind?: unknown } | null)?.kind;
  if (typeof kind !== "string" || !(DELIVERY_KINDS as readonly string[]).includes(kind)) {
    throw new RekeyError(
      "INVALID_INPUT",
      `A delivery target's kind is one of ${DELIVERY_KINDS.join(", ")}`,
    );
  }
  const taken = existing
    .filter((target) => target.kind === kind)
    .map((target) => Number(target.id.slice(kind.length + 1)));
  const id = `${kind}-${Math.max(0, ...taken) + 1}`;
  const parsed = deliveryTargetSchema().safeParse({ ...(spec as object), id });
  if (!parsed.success) {
    throw new RekeyError(
      "INVALID_INPUT",
      `Invalid ${kind} target: ${describeIssues(parsed.error)}`,
      {
        details: { issues: parsed.error.issues.map((issue) => issue.path.join(".") || "(root)") },
      },
    );
  }
  const target = parsed.data;
  delete target.state;
  if (target.kind === "webhook") assertWebhookUrl(target.url);
  if (target.kind === "store") assertStoreLocation(target.location);
  if (target.kind === "exec" && !target.command[0]?.startsWith("/")) {
    // A relative or bare command would run whatever the delivering process's directory and
    // PATH (cron's, rekey-http's) find, or nothing.
    throw new RekeyError("INVALID_INPUT", "An exec target's command is an absolute path", {
      hint: "`rekey deliver add exec -- CMD` finds CMD on your PATH and makes it absolute for you.",
    });
  }
  const same = existing.find((other) => samePlace(other, target));
  if (same) {
    throw new RekeyError("INVALID_INPUT", `That target is already configured as ${same.id}`, {
      hint: `Remove it first with \`rekey deliver remove ${same.id}\` to change it.`,
    });
  }
  return target;
}

function samePlace(a: DeliveryTargetSpec, b: DeliveryTargetSpec): boolean {
  if (a.kind !== b.kind) return false;
  switch (a.kind) {
    case "lightning-wallet":
      return a.path === (b as typeof a).path;
    case "dotenv":
      return a.path === (b as typeof a).path && a.variable === (b as typeof a).variable;
    case "exec":
      return a.command.join("\0") === (b as typeof a).command.join("\0");
    case "store":
      return a.location === (b as typeof a).location;
    case "webhook":
      return a.url === (b as typeof a).url;
  }
}
