// Runs one `rotateDue` in a separate process against core's built entry, on a fixed clock, and
// kills itself with SIGKILL after the rotation step `crashAfter`: a scheduler killed mid-rotation.
// See src/schedule/killed.test.ts.
import { createFileStore, createRekey, rotateDue } from "@rekey/core";

const { dir, url, nowMs, crashAfter } = JSON.parse(process.argv[2]);
const clock = { now: () => nowMs };
const store = createFileStore({ dir, env: {} });
const rekey = createRekey({
  store,
  surface: "library",
  baseUrl: url,
  env: {},
  clock,
  lockLeaseMs: 2000,
  hooks: {
    afterStep(step) {
      if (step === crashAfter) process.kill(process.pid, "SIGKILL");
    },
  },
});
const report = await rotateDue({ rekey, store, clock });
process.stdout.write(JSON.stringify(report));
await rekey.close();
await store.close();
