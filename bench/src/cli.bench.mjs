/**
 * CLI start-up, against bare `node -e 0` in the same run:
 * - `rekey --version`: the entry chunk only (everything else is a lazy chunk); target within
 *   1.1x of bare node. The launcher is CommonJS because any ES module entry alone costs ~1.1-1.2x.
 * - `rekey --help`: adds commander, still no core or zod.
 * - `rekey status`: file store in a temp REKEY_HOME plus one `whoami` to a sandbox on loopback
 *   (node:http); most of it is loading commander, core and zod (all bundled in apps/cli/dist).
 *   Target within 2x of bare node (issue "The engine reads once"). Measured with the V8 code
 *   cache the first run writes (as every run after a user's first finds it), and without it
 *   (`NODE_DISABLE_COMPILE_CACHE=1`: a first run, or a cache directory that cannot be written).
 *   Also its floor: a bare CommonJS script doing only what any `status` must (fixtures/
 *   status-floor.cjs), against `node -e 0` and against `rekey status`.
 * Uses the built command as installed (apps/cli/dist/rekey.cjs, the CommonJS launcher that runs
 * dist/cli.cjs): `pnpm bench` builds first. The code cache goes to the temp home's
 * XDG_CACHE_HOME, not the user's. `REKEY_CLI_BENCH_BIN=<dir>/rekey.cjs` runs it against another
 * build (a copy of apps/cli/dist from before a change).
 */
import { existsSync } from "node:fs";
import { mkdtemp, rm } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { fileURLToPath } from "node:url";
import { startSandbox } from "@rekey/sandbox";
import { compare, timeCommand } from "./runner.mjs";

const BIN =
  process.env.REKEY_CLI_BENCH_BIN ??
  fileURLToPath(new URL("../../apps/cli/dist/rekey.cjs", import.meta.url));
const STATUS_FLOOR = fileURLToPath(new URL("./fixtures/status-floor.cjs", import.meta.url));

export default async function benchCli() {
  if (!existsSync(BIN)) throw new Error(`${BIN} is missing: run pnpm build first`);
  const sandbox = await startSandbox({ port: 0 });
  const home = await mkdtemp(join(tmpdir(), "rekey-bench-cli-"));
  const env = {
    PATH: process.env.PATH,
    NO_COLOR: "1",
    REKEY_HOME: join(home, "rekey"),
    REKEY_API_URL: sandbox.url,
    XDG_CACHE_HOME: join(home, "cache"),
  };
  try {
    // Async: the sandbox answers from this process, so its event loop must stay free.
    await timeCommand(
      process.execPath,
      [BIN, "register", "--recovery-code-file", join(home, "rc.txt")],
      {
        env,
      },
    )();
    const bareNode = timeCommand(process.execPath, ["-e", "0"], { env });
    const version = await compare({
      name: "rekey --version vs node -e 0",
      baseline: bareNode,
      subject: timeCommand(process.execPath, [BIN, "--version"], { env }),
      warmup: 3,
      runs: 21,
    });
    const help = await compare({
      name: "rekey --help vs node -e 0",
      baseline: bareNode,
      subject: timeCommand(process.execPath, [BIN, "--help"], { env }),
      warmup: 3,
      runs: 21,
    });
    const rekeyStatus = timeCommand(process.execPath, [BIN, "status"], { env });
    const status = await compare({
      name: "rekey status (file store, sandbox on loopback) vs node -e 0",
      baseline: bareNode,
      subject: rekeyStatus,
      warmup: 2,
      runs: 11,
    });
    // What any `status` must cost here: node, its HTTP client and crypto, the store read, the
    // key opened, one whoami, one line (fixtures/status-floor.cjs). The target is 2x node -e 0;
    // this says how much of it is left for rekey once the floor is paid.
    const statusFloor = timeCommand(process.execPath, [STATUS_FLOOR], { env });
    const floor = await compare({
      name: "status floor (a bare script: store read, key opened, one whoami) vs node -e 0",
      baseline: bareNode,
      subject: statusFloor,
      warmup: 2,
      runs: 11,
    });
    const statusOverFloor = await compare({
      name: "rekey status vs its floor",
      baseline: statusFloor,
      subject: rekeyStatus,
      warmup: 2,
      runs: 11,
    });
    const statusUncached = await compare({
      name: "rekey status without its code cache vs node -e 0",
      baseline: bareNode,
      subject: timeCommand(process.execPath, [BIN, "status"], {
        env: { ...env, NODE_DISABLE_COMPILE_CACHE: "1" },
      }),
      warmup: 2,
      runs: 11,
    });
    const verdict = version.ratio <= 1.1 ? "meets" : "MISSES";
    console.log(`rekey --version ${verdict} the 1.1x target (${version.ratio.toFixed(2)}x)`);
    const statusVerdict = status.ratio <= 2 ? "meets" : "MISSES";
    console.log(
      `rekey status ${statusVerdict} the 2x target (${status.ratio.toFixed(2)}x; ` +
        `its floor alone ${floor.ratio.toFixed(2)}x)`,
    );
    return { version, help, status, floor, statusOverFloor, statusUncached };
  } finally {
    await sandbox.close();
    await rm(home, { recursive: true, force: true });
  }
}
