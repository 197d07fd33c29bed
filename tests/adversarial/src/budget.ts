/**
 * How hard the suite pushes. `.ci/run` (through `pnpm test`) runs the bounded form, a few
 * minutes on two cores; `pnpm --filter @rekey/adversarial run long` sets
 * REKEY_ADVERSARIAL_LONG=1 for a release.
 */
export const LONG = process.env.REKEY_ADVERSARIAL_LONG === "1";

export const BUDGET = LONG
  ? { kills: 2000, httpKills: 400, cliRuns: 500, storeDocuments: 2000, faucetReplies: 2000 }
  : { kills: 200, httpKills: 24, cliRuns: 60, storeDocuments: 150, faucetReplies: 150 };

/** A seed printed with each failure so that a run can be replayed (`REKEY_ADVERSARIAL_SEED`). */
export const SEED = Number(process.env.REKEY_ADVERSARIAL_SEED ?? Date.now() % 2 ** 31);
