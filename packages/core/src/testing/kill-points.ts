/**
 * Kill points: named instants of rotate, recover, register, resolve and audit at which a crash
 * test can SIGKILL the process (`REKEY_TEST_KILL_AT=<point>`, or `<point>@<n>` for its n-th
 * pass). The environment is read once, at the first point reached; without the variable a
 * point costs one comparison. Production code imports only {@link killPoint}; no vitest here.
 *
 * Every named point is listed in {@link KILL_POINTS} (one place): the crash suites iterate over
 * it, and a test fails if a step of the rotation state diagram in `docs/architecture.md` has
 * no point (the diagram names its points in `%% kill:` comments).
 */

export const KILL_POINTS = [
  // rotateUnderLock (docs/architecture.md "A rotation, step by step")
  "rotate.preflighted",
  "rotate.intent-written",
  "rotate.upstream-replied",
  "rotate.key-stored",
  "rotate.verified",
  "rotate.audited",
  "rotate.intent-cleared",
  // resolveIntentLocked (recovery of an unfinished rotation)
  "resolve.stored-audited",
  "resolve.stored-cleared",
  "resolve.not-rotated-audited",
  "resolve.replayed",
  "resolve.replay-stored",
  "resolve.recovered-audited",
  "resolve.key-lost-audited",
  "resolve.key-lost-recorded",
  // recover (recovery code)
  "recover.upstream-replied",
  "recover.key-stored",
  "recover.audited",
  // recover with another account's code: its key in a rescue file, the entry not yet appended
  "recover.other-rescued",
  // register
  "register.upstream-replied",
  "register.key-stored",
  // the audit log
  "audit.before-append",
  "audit.appended",
  // the file store's clearing write with the entry: the entry on disk, the file not yet renamed
  "audit.entry-synced",
  // an unwritable store after the faucet committed
  "rescue.written",
  // delivery of the new key to its targets, after the rotation (issue 12's journal)
  "delivery.pending",
  "delivery.written",
] as const;

export type KillPoint = (typeof KILL_POINTS)[number];

/** The environment variable a crash test sets in the child it wants killed. */
export const KILL_AT_ENV = "REKEY_TEST_KILL_AT";

let target: { point: string; nth: number } | null | undefined;
let passes = 0;

function parseTarget(): { point: string; nth: number } | null {
  const raw = process.env[KILL_AT_ENV];
  if (raw === undefined || raw === "") return null;
  const [point = "", nth] = raw.split("@");
  return { point, nth: nth === undefined ? 1 : Math.max(1, Number(nth) || 1) };
}

/** SIGKILLs this process when `point` is the one (and pass) the environment names. */
export function killPoint(point: KillPoint): void {
  if (target === undefined) target = parseTarget();
  if (target === null || target.point !== point) return;
  passes += 1;
  if (passes === target.nth) process.kill(process.pid, "SIGKILL");
}
