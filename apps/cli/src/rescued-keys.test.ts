import { readdir, readFile } from "node:fs/promises";
import { join } from "node:path";
import {
  type CredentialStore,
  createRekey,
  openCredentialStore,
  RekeyError,
  type StoreData,
  type WriteOptions,
} from "@rekey/core";
import { afterEach, describe, expect, it } from "vitest";
import {
  type CliHarness,
  RAW_SECRET,
  runBinary,
  startCliHarness,
} from "./cli-harness.test-helper.js";
import { statusDocument } from "./json-schemas.test-helper.js";

// A key that `register` had to write to a rescue file (the store refused it after the faucet
// created the account) is shown by the built binary's `status` and `doctor`, by fingerprint,
// with the command that imports it.
let harness: CliHarness | undefined;
afterEach(async () => {
  await harness?.close();
  harness = undefined;
});

/** The harness (sandbox, temp REKEY_HOME, rescue directory), as the tests below use it. */
async function setUp() {
  harness = await startCliHarness();
  const { home, rescueDir, env } = harness;
  return { home, rescueDir, env, url: harness.sandbox.url };
}

/**
 * Registers in `profile` through core with the real file store at `home`, which starts refusing
 * writes once the faucet has created the account (a disk that fills at that moment): the key
 * goes to a rescue file. Returns the file and its key.
 */
async function registerIntoRescue(
  setup: Awaited<ReturnType<typeof setUp>>,
  profile: string,
): Promise<{ file: string; key: string; fingerprint: string }> {
  const store = await openCredentialStore({ spec: setup.home, env: {} });
  let failing = false;
  const flaky = Object.assign(Object.create(store) as CredentialStore, {
    compareAndSet: (version: number, data: StoreData, options?: WriteOptions) =>
      failing
        ? Promise.reject(new RekeyError("STORE_UNAVAILABLE", "ENOSPC: no space left on device"))
        : store.compareAndSet(version, data, options),
    prepareAudit: store.prepareAudit?.bind(store),
    close: async () => {},
  });
  const rekey = createRekey({
    store: flaky,
    surface: "library",
    profile,
    baseUrl: setup.url,
    env: { REKEY_RESCUE_DIR: setup.rescueDir },
  });
  const error = await rekey
    .register({
      onRecoveryCode: async () => {
        failing = true;
      },
    })
    .then(
      () => undefined,
      (caught: unknown) => caught as RekeyError,
    );
  await rekey.close();
  await store.close();
  expect(error?.code).toBe("STORE_UNAVAILABLE");
  const file = String(error?.details.rescueFile);
  const content = JSON.parse(await readFile(file, "utf8")) as { key: string; fingerprint: string };
  return { file, key: content.key, fingerprint: content.fingerprint };
}

describe("a key only a rescue file holds", () => {
  it("status and doctor of the profile it was registered for name it and how to import it", async () => {
    const setup = await setUp();
    const rescued = await registerIntoRescue(setup, "default");
    const rekey = (args: string[]) => runBinary(args, { env: setup.env });

    // The profile never reached the store: status is NOT_FOUND, but its hint is the rescue file,
    // not `rekey register` (that would make a second account).
    const status = await rekey(["status"]);
    expect(status.code).toBe(4);
    expect(status.stderr).toContain(rescued.fingerprint);
    expect(status.stderr).toContain(`rekey rescue import ${rescued.file}`);
    expect(status.stderr).not.toMatch(/hint: Run `rekey register`/);

    const doctor = await rekey(["doctor"]);
    expect(doctor.code).toBe(11);
    expect(doctor.stdout).toMatch(/rescued key: .*fp:/);
    expect(doctor.stdout).toContain(rescued.fingerprint);
    expect(doctor.stdout).toContain(`rekey rescue import ${rescued.file}`);
    const doctorJson = await rekey(["doctor", "--json"]);
    const report = JSON.parse(doctorJson.stdout) as {
      ok: boolean;
      rescued_keys?: { fingerprint: string; file: string; source: string }[];
    };
    expect(report.ok).toBe(false);
    expect(report.rescued_keys).toEqual([
      expect.objectContaining({
        fingerprint: rescued.fingerprint,
        file: rescued.file,
        source: "register",
      }),
    ]);

    for (const result of [status, doctor, doctorJson]) {
      for (const text of [result.stdout, result.stderr]) {
        expect(text).not.toContain(rescued.key);
        expect(text).not.toMatch(RAW_SECRET);
      }
    }

    // Imported, it is in the store and no longer shown.
    expect((await rekey(["rescue", "import", rescued.file])).code).toBe(0);
    expect(await readdir(setup.rescueDir)).toEqual([]);
    const after = await rekey(["status"]);
    expect(after.code).toBe(0);
    expect(after.stdout).toContain(rescued.fingerprint);
    expect(after.stdout).not.toContain("rescued key");
    expect((await rekey(["doctor"])).code).toBe(0);
  });

  it("status of another profile on that faucet lists it too, by fingerprint", async () => {
    const setup = await setUp();
    const rekey = (args: string[]) => runBinary(args, { env: setup.env });
    const registered = await rekey([
      "register",
      "--recovery-code-file",
      join(setup.home, "..", "rc.txt"),
    ]);
    expect(registered.code).toBe(0);
    const rescued = await registerIntoRescue(setup, "second");

    const status = await rekey(["status"]);
    expect(status.code).toBe(0);
    const line = status.stdout.split("\n").find((text) => text.startsWith("rescued key:")) ?? "";
    expect(line).toContain(rescued.fingerprint);
    // The profile that registered is the one to import it with (else no profile points at it).
    expect(line).toContain(`rekey --profile second rescue import ${rescued.file}`);
    const json = await rekey(["status", "--json"]);
    const document = statusDocument.parse(JSON.parse(json.stdout));
    expect(document.rescued_keys?.map((key) => key.fingerprint)).toEqual([rescued.fingerprint]);
    // The profile to import it with, as a field too.
    expect(document.rescued_keys?.[0]?.profile).toBe("second");
    for (const text of [status.stdout, status.stderr, json.stdout]) {
      expect(text).not.toContain(rescued.key);
    }
  });
});
