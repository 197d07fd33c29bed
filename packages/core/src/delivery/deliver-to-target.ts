import type { DeliveryEnvironment, DeliveryPayload } from "./delivery-payload.js";
import { deliverToDotenv } from "./dotenv-target.js";
import { deliverToExec } from "./exec-target.js";
import { deliverToLightningWallet } from "./lightning-wallet-target.js";
import { deliverToStore } from "./store-target.js";
import type { DeliveryTargetSpec } from "./target-schema.js";
import { deliverToWebhook } from "./webhook-target.js";

/**
 * Delivers a key to one target, by kind.
 * @throws RekeyError as the target's module says (CONFIG_INVALID, STORE_UNAVAILABLE,
 *   UPSTREAM_TIMEOUT, UPSTREAM_UNAVAILABLE...).
 */
export function deliverToTarget(
  target: DeliveryTargetSpec,
  payload: DeliveryPayload,
  environment: DeliveryEnvironment,
): Promise<void> {
  switch (target.kind) {
    case "lightning-wallet":
      return deliverToLightningWallet(target.path, payload, environment);
    case "dotenv":
      return deliverToDotenv(target.path, target.variable, payload.key);
    case "exec":
      return deliverToExec(target.command, payload, environment.env ?? {}, target.timeoutMs);
    case "store":
      return deliverToStore(target.location, payload, environment);
    case "webhook":
      return deliverToWebhook(target, payload, environment);
  }
}
