import { open, rm } from "node:fs/promises";
import { resolve } from "node:path";
import { RekeyError } from "@rekey/core";
import type { CommandContext } from "../context.js";
import { formatFields } from "../output.js";

/**
 * `rekey register`: creates an operator and stores its key. The recovery code goes to exactly
 * the places asked for: a terminal, a new 0600 file, or `--json` with `--show-recovery-code`.
 * With none of them it refuses BEFORE registering, so the code cannot be lost.
 * @throws RekeyError INVALID_INPUT (no safe place for the recovery code, file exists),
 *   STORE_*, UPSTREAM_*, CONFIG_INVALID
 */
export async function runRegister(
  context: CommandContext,
  options: Record<string, unknown>,
): Promise<void> {
  const { output, deps } = context;
  const name = typeof options.name === "string" ? options.name : undefined;
  const email = typeof options.email === "string" ? options.email : undefined;
  const file = typeof options.recoveryCodeFile === "string" ? options.recoveryCodeFile : undefined;
  const showInJson = output.json && options.showRecoveryCode === true;
  const showOnTerminal = !output.json && deps.terminal.stdout;
  if (file === undefined && !showInJson && !showOnTerminal) {
    throw new RekeyError(
      "INVALID_INPUT",
      "Nowhere safe to put the recovery code: not registering",
      {
        hint: output.json
          ? "Pass --recovery-code-file PATH, or --show-recovery-code to include it in the JSON."
          : "Pass --recovery-code-file PATH (written with mode 0600), or run on a terminal.",
      },
    );
  }

  // Create the file first: a path that exists or cannot be written fails before an account
  // (and a recovery code) exists upstream.
  const path = file === undefined ? undefined : resolve(file);
  const handle = path === undefined ? undefined : await createSecretFile(path);
  // Written the moment the faucet answers, before the key is stored: from then on an account
  // exists upstream, and its recovery code is kept whatever happens to the store.
  let codeWritten = false;
  const keepCode = async (recoveryCode: string) => {
    if (handle === undefined) return;
    await handle.writeFile(`${recoveryCode}\n`);
    await handle.sync();
    await handle.close();
    codeWritten = true;
  };
  const register = () =>
    context.withRekey(async ({ rekey, store }) => {
      // A store that cannot take the key must fail before the faucet creates an account
      // whose key (and recovery code) would then have nowhere to go.
      await store.checkWritable();
      return rekey.register({
        ...(name === undefined ? {} : { name }),
        ...(email === undefined ? {} : { email }),
        onRecoveryCode: keepCode,
      });
    });
  let registered: Awaited<ReturnType<typeof register>>;
  try {
    registered = await register();
  } catch (error) {
    if (codeWritten && path !== undefined) {
      // The account exists: the code file stays, and the error names the key's rescue file.
      context.deps.stderr.write(`The recovery code was kept in ${path} (mode 0600).\n`);
    } else if (handle !== undefined && path !== undefined) {
      // Nothing was registered: remove the empty file so the path can be used again.
      await handle.close().catch(() => {});
      await rm(path, { force: true });
    }
    throw error;
  }
  output.result(
    "register",
    {
      principal: { kind: "operator" },
      label: "operator",
      operator_id: registered.operatorId,
      fingerprint: registered.fingerprint,
      ...(path === undefined ? {} : { recovery_code_file: path }),
      ...(showInJson ? { recovery_code: registered.recoveryCode } : {}),
    },
    () => {
      const { colors } = output;
      const lines = [
        `${colors.green("registered")} operator ${registered.operatorId}`,
        formatFields([
          ["key", registered.fingerprint],
          ["recovery code file", path === undefined ? undefined : `${path} (mode 0600)`],
        ]),
      ];
      if (path === undefined && showOnTerminal) {
        lines.push(
          "",
          colors.yellow("Recovery code (shown once, keep it offline; it is the only way back in):"),
          `  ${registered.recoveryCode}`,
        );
      }
      return lines.join("\n");
    },
  );
}

async function createSecretFile(path: string) {
  try {
    // "wx": never overwrite an existing file (it may hold an older recovery code).
    return await open(path, "wx", 0o600);
  } catch (error) {
    const code = (error as NodeJS.ErrnoException).code;
    throw new RekeyError(
      "INVALID_INPUT",
      code === "EEXIST"
        ? `The recovery code file ${path} already exists: not registering`
        : `Cannot create the recovery code file ${path} (${code ?? "error"}): not registering`,
      { hint: "Choose a new path in a directory you can write." },
    );
  }
}
