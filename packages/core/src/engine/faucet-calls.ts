import { agent, OPERATOR } from "../principal.js";
import { recordOf } from "./principal-records.js";
import type { Session } from "./session.js";
import type { AgentStatus, Rekey } from "./types.js";

/** Calls made with the current key: `whoami`, `listAgents`, `withdraw`. */
export function createFaucetCalls(
  session: Session,
): Pick<Rekey, "whoami" | "listAgents" | "withdraw"> {
  const { readView, client, ensureResolved, requireActive, keyProvider, cooldownRemaining } =
    session;
  return {
    async whoami(principal) {
      await ensureResolved(await readView());
      const target = principal ?? (await requireActive());
      const identity = await keyProvider.withKey(target, async (key) =>
        (await client()).whoami(key),
      );
      const key = await keyProvider.current(target);
      return { ...identity, fingerprint: key.fingerprint };
    },

    async listAgents() {
      await ensureResolved(await readView());
      const agents = await keyProvider.withKey(OPERATOR, async (key) =>
        (await client()).listAgents(key),
      );
      const view = await readView();
      return agents.map((listed): AgentStatus => {
        const record = recordOf(view, agent(listed.id));
        const remaining = cooldownRemaining(record?.cooldownUntil);
        return {
          id: listed.id,
          name: listed.name,
          balanceSats: listed.balanceSats,
          isActive: listed.isActive,
          hasKey: record?.key !== undefined,
          fingerprint: record?.fingerprint,
          cooldownUntil: remaining > 0 ? record?.cooldownUntil : undefined,
          cooldownRemainingSeconds: remaining,
          lastRotatedAt: record?.lastRotation?.rotatedAt,
        };
      });
    },

    async withdraw(input) {
      await ensureResolved(await readView());
      const principal = input.principal ?? (await requireActive());
      return keyProvider.withKey(principal, async (key) =>
        (await client()).withdraw(key, {
          ...(input.amountSats === undefined ? {} : { amountSats: input.amountSats }),
          ...(input.invoice === undefined ? {} : { invoice: input.invoice }),
        }),
      );
    },
  };
}
