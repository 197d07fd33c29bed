import { mkdtemp, rm } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import {
  createTestClock,
  type RunningSandbox,
  type SandboxOptions,
  startSandbox,
} from "@rekey/sandbox";
import { createFaucetClient, type FaucetClient } from "../client/index.js";
import { RekeyError } from "../errors.js";
import { agent, OPERATOR } from "../principal.js";
import { createFileStore } from "../store/file-store.js";
import { createMemoryStore } from "../store/memory-store.js";
import type { AuditEventInput, CredentialStore } from "../store/types.js";
import type { RotationStep } from "./context.js";
import { createRekey, type RekeyOptions } from "./create-rekey.js";
import { recordOf, storedKeyOf, viewOf } from "./principal-records.js";
import type { Rekey } from "./types.js";

/** A sandbox on loopback with a test clock that rekey shares, and helpers to build engines on it. */
export interface EngineFixture {
  sandbox: RunningSandbox;
  clock: ReturnType<typeof createTestClock>;
  client: FaucetClient;
  store: CredentialStore;
  dir: string;
  /** Where this fixture's engines write rescue files. */
  rescueDir: string;
  rekey(overrides?: Partial<RekeyOptions>): Rekey;
  close(): Promise<void>;
}

export async function startEngineFixture(
  options: { sandbox?: SandboxOptions; store?: "memory" | "file" } = {},
): Promise<EngineFixture> {
  const clock = createTestClock();
  const sandbox = await startSandbox({ clock, ...options.sandbox });
  const dir = await mkdtemp(join(tmpdir(), "rekey-engine-"));
  // Rescue files go beside the store, never into the real home of whoever runs the tests.
  const rescueDir = `${dir}-rescue`;
  const store = options.store === "file" ? createFileStore({ dir, env: {} }) : createMemoryStore();
  const client = createFaucetClient({ baseUrl: sandbox.url, clock });
  const engines: Rekey[] = [];
  return {
    sandbox,
    clock,
    client,
    store,
    dir,
    rescueDir,
    rekey(overrides = {}) {
      const rekey = createRekey({
        store,
        surface: "library",
        baseUrl: sandbox.url,
        clock,
        env: { REKEY_RESCUE_DIR: rescueDir },
        ...overrides,
      });
      engines.push(rekey);
      return rekey;
    },
    async close() {
      for (const engine of engines) await engine.close();
      await store.close();
      await sandbox.close();
      await rm(dir, { recursive: true, force: true });
      await rm(rescueDir, { recursive: true, force: true });
    },
  };
}

/** Reads the raw stored key of a principal, for assertions that the store holds a working key. */
export async function storedKey(
  store: CredentialStore,
  principal: "operator" | number,
  profile = "default",
) {
  return storedKeyOf(await viewIn(store, profile), toPrincipal(principal));
}

export { intentsIn } from "../testing/journals.js";

/** The unfinished rotation (journal entry) of a principal, if any. */
export async function intentOf(
  store: CredentialStore,
  principal: "operator" | number,
  profile = "default",
) {
  return recordOf(await viewIn(store, profile), toPrincipal(principal))?.intent;
}

async function viewIn(store: CredentialStore, profile: string) {
  const { data } = await store.read();
  return viewOf(data, profile, data.profiles[profile]?.baseUrl ?? "http://127.0.0.1:1");
}

function toPrincipal(principal: "operator" | number) {
  return principal === "operator" ? OPERATOR : agent(principal);
}

/**
 * `store`, refusing each compare-and-set with ENOSPC while `refuses()` says so (a disk that fills
 * up on cue, which the real stores cannot be made to do); everything else goes to `store`.
 */
export function refusingWrites(store: CredentialStore, refuses: () => boolean): CredentialStore {
  return {
    kind: store.kind,
    location: store.location,
    read: (options) => store.read(options),
    lock: (name, options) => store.lock(name, options),
    appendAudit: (event) => store.appendAudit(event),
    readAudit: () => store.readAudit(),
    watch: (listener) => store.watch(listener),
    checkWritable: () => store.checkWritable(),
    health: () => store.health(),
    close: async () => {},
    compareAndSet: async (version, data, options) => {
      if (refuses()) throw new RekeyError("STORE_UNAVAILABLE", "ENOSPC: no space left on device");
      return store.compareAndSet(version, data, options);
    },
  };
}

/**
 * `store` with faults around a recovery's audit entry, which the real stores cannot be made to
 * show on cue: its append refused (the log is gone) or slowed (with `slowRecoverEntry` called
 * as it starts), and the rescue file's lock refused (no connection left for the lock).
 */
export function withRecoveryFaults(
  store: CredentialStore,
  faults: { refuseRecoverEntry?: boolean; slowRecoverEntry?: () => void; noRescueLock?: boolean },
): CredentialStore {
  return Object.assign(Object.create(store) as CredentialStore, {
    lock: (name: string, options: Parameters<CredentialStore["lock"]>[1]) =>
      faults.noRescueLock === true && name.startsWith("rescue.")
        ? Promise.reject(new RekeyError("STORE_BUSY", "no connection left for the lock"))
        : store.lock(name, options),
    appendAudit: async (event: AuditEventInput) => {
      if (event.action === "recover" && faults.refuseRecoverEntry === true) {
        throw new RekeyError("STORE_UNAVAILABLE", "the audit log is gone");
      }
      if (event.action === "recover" && faults.slowRecoverEntry !== undefined) {
        faults.slowRecoverEntry();
        await new Promise((resolve) => setTimeout(resolve, 300));
      }
      return store.appendAudit(event);
    },
    prepareAudit: store.prepareAudit?.bind(store),
    close: async () => {},
  });
}

/**
 * Thrown by {@link crashingAt}'s hook: the engine stops right after a step without any clean-up
 * of the store (only the lock is released, as a dead process's lease is), as a kill would.
 */
export class Crash extends Error {}

/** Engine hooks that crash a rotation right after `step`. */
export function crashingAt(step: RotationStep): { afterStep(current: RotationStep): void } {
  return {
    afterStep(current: RotationStep) {
      if (current === step) throw new Crash(`crashed after ${step}`);
    },
  };
}

/** What a promise settled with: its value, or the error it rejected with. */
export function settle(promise: Promise<unknown>): Promise<unknown> {
  return promise.then(
    (value) => value,
    (error: unknown) => error,
  );
}
