import { createDeliveryOperations } from "./deliveries.js";
import { createEnrolment } from "./enrol.js";
import { createFaucetCalls } from "./faucet-calls.js";
import { createHealth } from "./health.js";
import { createHeldKeys } from "./held-keys.js";
import { createIdempotency } from "./idempotency.js";
import { createRecovery } from "./recover.js";
import type { RekeyOptions } from "./rekey-options.js";
import { createRepair } from "./repair.js";
import { createRotateKey } from "./rotate-request.js";
import { createSession } from "./session.js";
import { createStatus } from "./status.js";
import type { Rekey } from "./types.js";

export type { RekeyOptions } from "./rekey-options.js";

/**
 * Binds the rotation engine to one store, profile and surface: one session (session.ts) that
 * the operations, each in a module named for what it does, share.
 * @throws RekeyError CONFIG_INVALID for a bad profile name or URL.
 */
export function createRekey(options: RekeyOptions): Rekey {
  const session = createSession(options);
  const { keyProvider, deliveryJournal, recordIdFor } = session;
  return {
    profileName: session.profileName,
    surface: session.surface,
    baseUrl: session.baseUrl,
    activePrincipal: session.activePrincipal,
    ...createDeliveryOperations(deliveryJournal, recordIdFor),
    ...createEnrolment(session),
    ...createRecovery(session),
    ...createStatus(session),
    ...createFaucetCalls(session),
    ...createHeldKeys(session),
    rotateKey: createRotateKey(session) as Rekey["rotateKey"],
    ...createIdempotency(session),
    ...createRepair(session),
    ...createHealth(session),
    keyProvider,
    async close() {
      keyProvider.close();
    },
  };
}
