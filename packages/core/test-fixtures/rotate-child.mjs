// Rotates in a separate process against core's built entry; see src/engine/rotate-child.test-helper.ts.
// With `barrier`, it prints "ready" once loaded and waits for a line on stdin before rotating,
// so that several processes start their rotations at the same moment. With `stallAfter`, it
// prints "stalled" after that step and waits half a second there, for the parent to stop it
// (SIGSTOP) as a suspended laptop would be.
import { createInterface } from "node:readline";
import { createFileStore, createRekey } from "@rekey/core";

const { dir, url, crashAfter, stallAfter, force, barrier } = JSON.parse(process.argv[2]);
const store = createFileStore({ dir, env: {} });
const hooks = crashAfter
  ? {
      afterStep(step) {
        if (step === crashAfter) process.kill(process.pid, "SIGKILL");
      },
    }
  : stallAfter
    ? {
        async afterStep(step) {
          if (step !== stallAfter) return;
          process.stdout.write("stalled\n");
          await new Promise((resolve) => setTimeout(resolve, 500));
        },
      }
    : {};
const rekey = createRekey({
  store,
  surface: "library",
  baseUrl: url,
  env: {},
  lockLeaseMs: 2000,
  lockWaitMs: 30000,
  hooks,
});
if (barrier) {
  process.stdout.write("ready\n");
  const lines = createInterface({ input: process.stdin });
  await new Promise((resolve) => lines.once("line", resolve));
  lines.close();
}
try {
  const result = await rekey.rotateKey({ force });
  process.stdout.write(JSON.stringify(result));
} catch (error) {
  process.stdout.write(JSON.stringify({ error: error.code ?? String(error) }));
  process.exitCode = 1;
} finally {
  await rekey.close();
  await store.close();
}
