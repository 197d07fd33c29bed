import { readFile } from "node:fs/promises";
import { resolve } from "node:path";
import {
  fingerprint,
  isRekeyError,
  lightningWalletCredentialsPath,
  type Principal,
  parseLightningWalletCredentials,
  principalLabel,
  principalView,
  RekeyError,
  recordPrincipalView,
  toRekeyError,
  type WalletImportView,
} from "@rekey/core";
import type { CommandContext, RekeySession } from "../context.js";
import { exitCodeFor } from "../exit-codes.js";
import { formatTable } from "../output.js";

interface ImportOutcome {
  entry: "operator" | "agent";
  result: "imported" | "failed";
  principal?: Principal | undefined;
  label?: string | undefined;
  fingerprint?: string | undefined;
  name?: string | undefined;
  /** The record it is stored in ("agent:7"). */
  record?: string | undefined;
  /** False when it belongs to another operator than the profile's (stored beside it). */
  inProfile?: boolean | undefined;
  /** The delivery target added for this file, when one was. */
  deliveryTarget?: string | undefined;
  /** Why the file was not added as a target although asked (`--deliver`). */
  deliveryRefused?: string | undefined;
  error?: { code: string; message: string } | undefined;
}

/**
 * `rekey import lightning-wallet [--file PATH]`: imports the credentials file of the
 * `lightning-wallet-mcp` server / `lw` CLI. Each key is verified (`whoami`) before it is
 * stored; the file's recovery code is never imported. A key that fails is reported and the
 * exit code is that of its error.
 * @throws RekeyError INVALID_INPUT (unreadable or malformed file), STORE_*, CONFIG_INVALID
 */
export async function runImportLightningWallet(
  context: CommandContext,
  options: Record<string, unknown>,
): Promise<void> {
  const path = resolve(
    typeof options.file === "string"
      ? options.file
      : lightningWalletCredentialsPath(context.deps.env, context.deps.homeDir),
  );
  const credentials = parseLightningWalletCredentials(await readJson(path));

  const deliver = await wantsDelivery(context, options, path);
  const outcomes = await withImportSession(context, credentials.apiUrl, async ({ rekey }) => {
    const results: ImportOutcome[] = [];
    // The operator first, so an agent entry lands in a profile that already has its operator;
    // the file's `active` entry becomes the profile's active principal.
    for (const entry of ["operator", "agent"] as const) {
      const found = credentials[entry];
      if (found === undefined) continue;
      const makeActive = (credentials.active ?? "operator") === entry;
      try {
        const imported = await rekey.login(found.apiKey, { source: "import", makeActive });
        results.push({
          entry,
          result: "imported",
          principal: imported.principal,
          label: principalLabel(imported.principal),
          fingerprint: imported.fingerprint,
          name: imported.identity.name,
          record: imported.recordPrincipal,
          inProfile: imported.inProfile,
          ...(deliver && imported.inProfile
            ? await addFileTarget(rekey, path, imported.principal)
            : {}),
        });
      } catch (error) {
        const rekeyError = toRekeyError(error);
        const storedAs = rekeyError.details.storedAs;
        if (typeof storedAs === "string") {
          // Stored, in its own record, beside a profile that acts as another account.
          results.push({
            entry,
            result: "imported",
            record: storedAs,
            inProfile: false,
            name: found.name,
            fingerprint: fingerprint(found.apiKey),
          });
          continue;
        }
        results.push({
          entry,
          result: "failed",
          name: found.name,
          error: { code: rekeyError.code, message: rekeyError.message },
        });
      }
    }
    return results;
  });
  if (deliver) {
    // A key filed beside the profile is delivered as its own principal (`--as`), in a session
    // of its own: the profile's principal must never be written over another account's key.
    for (const outcome of outcomes) {
      if (outcome.result !== "imported" || outcome.inProfile !== false || !outcome.record) continue;
      const session = await context.deps.openRekey({ ...context.globals, as: outcome.record });
      try {
        Object.assign(outcome, await addFileTarget(session.rekey, path));
      } finally {
        await session.close();
      }
    }
  }

  const { colors } = context.output;
  context.output.result(
    "import lightning-wallet",
    importPayload(path, outcomes, credentials.hasRecoveryCode),
    () => {
      const lines = [
        `Imported from ${path}:`,
        formatTable(
          ["entry", "result", "principal", "name", "key"],
          outcomes.map((outcome) => [
            outcome.entry,
            outcome.result === "imported"
              ? colors.green("imported")
              : colors.red(`failed: ${outcome.error?.code ?? "INTERNAL"}`),
            outcome.record === undefined
              ? (outcome.label ?? "-")
              : `${outcome.record}${outcome.inProfile === false ? ` (beside this profile: --as ${outcome.record})` : ""}`,
            outcome.name ?? "-",
            outcome.fingerprint ?? "-",
          ]),
        ),
      ];
      for (const outcome of outcomes) {
        if (outcome.error) lines.push(colors.red(`${outcome.entry}: ${outcome.error.message}`));
        if (outcome.deliveryRefused)
          lines.push(
            colors.yellow(
              `${outcome.entry}: not added as a delivery target: ${outcome.deliveryRefused}`,
            ),
          );
      }
      const targets = outcomes.filter((outcome) => outcome.deliveryTarget !== undefined);
      if (targets.length > 0) {
        lines.push(
          `New keys of ${targets.map((outcome) => outcome.label ?? outcome.record ?? outcome.entry).join(" and ")} will be written to ${path} after each rotation (rekey deliver list).`,
        );
      } else if (!deliver && outcomes.some((outcome) => outcome.result === "imported")) {
        lines.push(
          colors.yellow(
            `This file will keep the old key after a rotation: add it as a delivery target of each imported key (${outcomes
              .filter((outcome) => outcome.result === "imported")
              .map((outcome) =>
                outcome.inProfile === false && outcome.record !== undefined
                  ? `rekey --as ${outcome.record} deliver add lightning-wallet ${path}`
                  : outcome.principal?.kind === "agent"
                    ? `rekey deliver add --agent ${outcome.principal.agentId} lightning-wallet ${path}`
                    : `rekey deliver add lightning-wallet ${path}`,
              )
              .join("; ")}), or import again with --deliver.`,
          ),
        );
      }
      if (credentials.hasRecoveryCode) {
        lines.push(
          colors.dim(
            "The file's recovery code was not imported: rekey never stores one. Keep it offline.",
          ),
        );
      }
      return lines.join("\n");
    },
  );
  const firstFailure = outcomes.find((outcome) => outcome.result === "failed");
  if (firstFailure?.error) context.setExitCode(exitCodeFor(firstFailure.error.code));
}

/**
 * Whether to add the file as a delivery target: `--deliver` / `--no-deliver`, else asked on a
 * terminal, else not (a script says so explicitly).
 */
async function wantsDelivery(
  context: CommandContext,
  options: Record<string, unknown>,
  path: string,
): Promise<boolean> {
  if (typeof options.deliver === "boolean") return options.deliver;
  if (!context.interactive) return false;
  return context.deps.confirm(
    `Keep ${path} up to date (write each new key into it after a rotation)?`,
  );
}

/**
 * Adds the file as a lightning-wallet target of a principal (default: the session's); when it
 * cannot be, why, for the user to see.
 */
async function addFileTarget(
  rekey: RekeySession["rekey"],
  path: string,
  principal?: Principal,
): Promise<{ deliveryTarget: string } | { deliveryRefused: string }> {
  try {
    const added = await rekey.addDeliveryTarget({ kind: "lightning-wallet", path }, principal);
    return { deliveryTarget: added.target };
  } catch (error) {
    // Already a target (a second import), or a file rekey refuses to write: the import stands.
    if (isRekeyError(error, "INVALID_INPUT", "CONFIG_INVALID"))
      return { deliveryRefused: error.message };
    throw error;
  }
}

/**
 * Runs `use` on a session whose profile uses the file's own `api_url` when nothing else names
 * a faucet (no --url, REKEY_API_URL, LIGHTNING_WALLET_API_URL) and the profile is new: the
 * keys belong to that faucet, and would be refused by any other.
 */
async function withImportSession<T>(
  context: CommandContext,
  apiUrl: string | undefined,
  use: (session: RekeySession) => Promise<T>,
): Promise<T> {
  const { env } = context.deps;
  const named = context.globals.url ?? (env.REKEY_API_URL || env.LIGHTNING_WALLET_API_URL);
  if (apiUrl === undefined || named) return context.withRekey(use);
  const probe = await context.deps.openRekey(context.globals);
  let isNew: boolean;
  try {
    isNew = (await probe.store.read()).data.profiles[probe.rekey.profileName] === undefined;
  } finally {
    await probe.close();
  }
  if (!isNew) return context.withRekey(use);
  const session = await context.deps.openRekey({ ...context.globals, url: apiUrl });
  try {
    return await use(session);
  } finally {
    await session.close();
  }
}

async function readJson(path: string): Promise<unknown> {
  let text: string;
  try {
    text = await readFile(path, "utf8");
  } catch (error) {
    const code = (error as NodeJS.ErrnoException).code;
    throw new RekeyError("INVALID_INPUT", `Cannot read ${path} (${code ?? "error"})`, {
      hint:
        code === "ENOENT"
          ? "Pass --file PATH, or set LIGHTNING_WALLET_HOME to the directory holding credentials.json."
          : "Check the file's permissions.",
    });
  }
  try {
    return JSON.parse(text);
  } catch {
    // The parser's message could quote the file's content (a key): do not pass it on.
    throw new RekeyError("INVALID_INPUT", `${path} is not valid JSON`, {
      hint: "Expected the lightning-wallet credentials.json format (version 1).",
    });
  }
}

/** The `--json` of an import: core's vocabulary (`walletImportSchema`). */
function importPayload(
  file: string,
  outcomes: ImportOutcome[],
  recoveryCodeSkipped: boolean,
): WalletImportView {
  return {
    file,
    recovery_code_skipped: recoveryCodeSkipped,
    results: outcomes.map((outcome) => {
      const owner =
        outcome.record !== undefined
          ? recordPrincipalView(outcome.record)
          : outcome.principal === undefined
            ? {}
            : { principal: principalView(outcome.principal), label: outcome.label };
      return Object.fromEntries(
        Object.entries({
          entry: outcome.entry,
          result: outcome.result,
          ...owner,
          fingerprint: outcome.fingerprint,
          name: outcome.name,
          in_profile: outcome.inProfile,
          delivery_target: outcome.deliveryTarget,
          delivery_refused: outcome.deliveryRefused,
          error: outcome.error,
        }).filter(([, value]) => value !== undefined),
      ) as WalletImportView["results"][number];
    }),
  };
}
