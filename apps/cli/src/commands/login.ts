import { identityView, principalLabel, recordPrincipalView } from "@rekey/core";
import type { CommandContext } from "../context.js";
import { formatFields } from "../output.js";
import { readSecret } from "./input.js";

/**
 * `rekey login`: stores an existing key read from stdin or a hidden prompt; core verifies it
 * with `whoami` before saving.
 * @throws RekeyError INVALID_INPUT (not one key on stdin), UNAUTHORIZED, STORE_*, UPSTREAM_*,
 *   CONFIG_INVALID
 */
export async function runLogin(
  context: CommandContext,
  options: Record<string, unknown> = {},
): Promise<void> {
  const key = await readSecret(context, "API key");
  const result = await context.withRekey(({ rekey }) =>
    rekey.login(key, { source: "login", replace: options.replace === true }),
  );
  const label = principalLabel(result.principal);
  context.output.result(
    "login",
    {
      ...recordPrincipalView(result.recordPrincipal),
      fingerprint: result.fingerprint,
      in_profile: result.inProfile,
      identity: identityView({ ...result.identity, fingerprint: result.fingerprint }),
    },
    () =>
      [
        `${context.output.colors.green("logged in")} as ${label} "${result.identity.name}"`,
        formatFields([
          ["key", result.fingerprint],
          ["record", result.recordPrincipal],
          ["balance", `${result.identity.balanceSats} sats`],
        ]),
        ...(result.inProfile
          ? []
          : [
              context.output.colors.dim(
                `Stored beside this profile (it belongs to another operator); act as it with --as ${result.recordPrincipal}.`,
              ),
            ]),
      ].join("\n"),
  );
}
