import { isRekeyError, recordPrincipalView } from "@rekey/core";
import type { CommandContext } from "../context.js";

/**
 * `rekey forget PRINCIPAL [--yes]`: removes a principal's record and key from the store,
 * audited with the key's fingerprint. A key the faucet still accepts is forgotten only after a
 * confirmation (or `--yes`); a principal a profile uses is refused.
 * @throws RekeyError NOT_FOUND, CONFIG_INVALID, INVALID_INPUT (declined), ROTATION_IN_PROGRESS,
 *   STORE_*, UPSTREAM_*
 */
export async function runForget(
  context: CommandContext,
  principal: string,
  options: Record<string, unknown>,
): Promise<void> {
  const yes = options.yes === true;
  const result = await context.withRekey(async ({ rekey }) => {
    try {
      return await rekey.forget(principal, { confirmLive: yes });
    } catch (error) {
      const asks = isRekeyError(error, "CONFIG_INVALID") && error.details.needsConfirmation;
      if (!asks || !context.interactive) throw error;
      context.deps.stderr.write(`${error.message}\n`);
      if (!(await context.deps.confirm(`Forget ${principal} anyway?`))) throw error;
      return rekey.forget(principal, { confirmLive: true });
    }
  });
  context.output.result(
    "forget",
    {
      ...recordPrincipalView(result.principal),
      ...(result.fingerprint === undefined ? {} : { fingerprint: result.fingerprint }),
      was_alive: result.wasAlive,
    },
    () =>
      `${context.output.colors.green("forgot")} ${result.principal}${result.fingerprint ? ` (${result.fingerprint}${result.wasAlive ? ", still accepted by the faucet" : ""})` : ""}`,
  );
}
