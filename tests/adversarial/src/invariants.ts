import { readdir, utimes } from "node:fs/promises";
import { join } from "node:path";
import { type AuditEntry, type CredentialStore, verifyAuditChain } from "@rekey/core";
import type { RunningSandbox } from "@rekey/sandbox";
import { expect } from "vitest";
import { type CliRun, expectHandled, runCli } from "./built-cli.js";

/**
 * The invariants of issue 11, checked by a fresh process after a kill: the store holds a key
 * the faucet accepts or a durable KEY_LOST record; every rotation the faucet committed is in
 * the audit log; the audit chain verifies.
 */

/** What one check found. */
export interface InvariantCheck {
  /** The principal has no working key. */
  lost: boolean;
  /** ...and nothing said so (no KEY_LOST record, no KEY_LOST error). */
  silent: boolean;
  /** Rotations the faucet committed without an audit entry. */
  unaudited: number;
  /** Resolutions that brought a key back. */
  recovered: number;
  /** The status run, for the caller's own assertions. */
  status: CliRun;
}

/**
 * Rotations the engine counts as done (or recorded as lost) in the audit log. A recovery
 * that replaced another account's key is audited as a failure (the profile refused the key)
 * with the new key's fingerprint: the faucet committed it all the same.
 */
export function auditedRotations(entries: readonly AuditEntry[]): number {
  return entries.filter(
    (entry) =>
      ((entry.action === "rotate" || entry.action === "resolve" || entry.action === "recover") &&
        (entry.outcome === "success" ||
          entry.outcome === "recovered" ||
          entry.outcome === "key_lost")) ||
      (entry.action === "recover" && entry.newFingerprint !== undefined) ||
      (entry.action === "import" && entry.requestId !== undefined),
  ).length;
}

/**
 * Entries that record a committed key change a second time: the same request, principal and
 * new key (a rotation's success, its resolution's `recovered`, a recovery's entry), or the same
 * request's loss, twice. The engine writes each once (`auditOnce`); a kill or a race that made
 * it write one again shows here. Imports and acknowledgements are events of their own.
 */
export function duplicateAuditEntries(entries: readonly AuditEntry[]): string[] {
  const seen = new Map<string, number>();
  for (const entry of entries) {
    if (entry.requestId === undefined) continue;
    const change =
      entry.outcome === "key_lost" && entry.action === "resolve"
        ? "lost"
        : (entry.action === "rotate" && entry.outcome === "success") ||
            (entry.action === "resolve" && entry.outcome === "recovered") ||
            (entry.action === "recover" && entry.newFingerprint !== undefined)
          ? `key ${entry.newFingerprint}`
          : undefined;
    if (change === undefined) continue;
    const key = `${entry.requestId} ${entry.principal} ${change}`;
    seen.set(key, (seen.get(key) ?? 0) + 1);
  }
  return [...seen].filter(([, count]) => count > 1).map(([key, count]) => `${key} x${count}`);
}

/** Upstream key changes the sandbox committed (rotations and recoveries): its own record. */
export function sandboxCommits(sandbox: RunningSandbox): number {
  const stats = sandbox.stats();
  return (
    (stats.rotationsByAction.regenerate_operator_key ?? 0) +
    (stats.rotationsByAction.regenerate_agent_key ?? 0) +
    (stats.rotationsByAction.recover ?? 0)
  );
}

/**
 * A killed process may hold the file store's locks; their lease (20 s) would make the next
 * process wait that long. Ageing the lock files stands for that time passing.
 */
export async function ageLocks(storeDir: string | undefined): Promise<void> {
  if (storeDir === undefined) return;
  const old = new Date(Date.now() - 120_000);
  const locksDir = join(storeDir, "locks");
  const names = await readdir(locksDir).catch(() => [] as string[]);
  const paths = [...names.map((name) => join(locksDir, name)), join(storeDir, ".store.lock")];
  await Promise.all(paths.map((path) => utimes(path, old, old).catch(() => {})));
}

/**
 * Runs `rekey status --json` as the next process (it resolves what the killed one left) and
 * checks the invariants against the sandbox's commits since `commitsBefore`.
 */
export async function checkInvariants(options: {
  where: string;
  env: Record<string, string>;
  store: CredentialStore;
  sandbox: RunningSandbox;
  commitsBefore: number;
  auditBefore: number;
  storeDir: string | undefined;
}): Promise<InvariantCheck> {
  const { where, env, store } = options;
  await ageLocks(options.storeDir);
  const status = await runCli(["status", "--json"], { env });
  expectHandled(status, `${where}: status`, true);
  let lost: boolean;
  let signalled: boolean;
  if ((status.code === 0 || status.code === 9) && status.stdout.trim() !== "") {
    const body = JSON.parse(status.stdout) as {
      has_key: boolean;
      key_lost?: unknown;
      identity?: unknown;
      identity_error?: { code: string };
    };
    lost = !body.has_key || body.identity === undefined;
    signalled = body.key_lost !== undefined;
    // A KEY_LOST record never sits beside a working key.
    if (body.key_lost !== undefined) expect(body.has_key, where).toBe(false);
    if (body.has_key && body.identity === undefined) {
      // The store holds a key the faucet refuses: a loss unless the faucet was unreachable.
      expect(body.identity_error?.code, where).toBe("UNAUTHORIZED");
    }
  } else {
    lost = true;
    signalled = /KEY_LOST/.test(status.stderr);
  }
  await store.read();
  const audit = await store.readAudit();
  expect(verifyAuditChain(audit).ok, `${where}: audit chain`).toBe(true);
  // Each committed change once: never a second entry for it, however the kill fell.
  expect(duplicateAuditEntries(audit), `${where}: audit entries written twice`).toEqual([]);
  const fresh = audit.slice(options.auditBefore);
  const committed = sandboxCommits(options.sandbox) - options.commitsBefore;
  return {
    lost,
    silent: lost && !signalled,
    unaudited: Math.max(0, committed - auditedRotations(fresh)),
    recovered: fresh.filter((entry) => entry.action === "resolve" && entry.outcome === "recovered")
      .length,
    status,
  };
}
