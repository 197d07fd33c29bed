import { createRekey, isRekeyError, type Rekey, verifyAuditChain } from "@rekey/core";
import { startSandbox } from "@rekey/sandbox";
import { createPostgresStore } from "@rekey/store-postgres";
import { dropPostgresSchema, TEST_MASTER_KEY_ENV } from "@rekey/store-postgres/testing";
import { afterEach, describe, expect, inject, it } from "vitest";

/**
 * On PostgreSQL a rotation's audit entry is appended by the write that clears its journal, after
 * `whoami` answered. The principal's lock must be held through that write: another process that
 * took it earlier would find the `stored` journal, resolve it and append the entry a second time.
 * Here another handle (as another process would) tries to rotate the same principal at each late
 * step of a rotation and must be told ROTATION_IN_PROGRESS.
 */

const pgUrl = inject("postgresUrl");
const cleanups: (() => Promise<unknown>)[] = [];
afterEach(async () => {
  for (const cleanup of cleanups.splice(0).reverse()) await cleanup();
});

describe.skipIf(pgUrl === "")("a rotation on PostgreSQL", () => {
  it("holds the principal's lock until its journal is cleared and its entry written", async () => {
    const sandbox = await startSandbox({ port: 0 });
    cleanups.push(() => sandbox.close());
    const schema = `holds_lock_${Date.now().toString(36)}`;
    cleanups.push(() => dropPostgresSchema(pgUrl, schema));
    const open = () => createPostgresStore({ url: pgUrl, schema, env: TEST_MASTER_KEY_ENV });
    const env = { ...TEST_MASTER_KEY_ENV };
    const firstStore = open();
    const secondStore = open();
    cleanups.push(
      () => firstStore.close(),
      () => secondStore.close(),
    );
    expect(firstStore.appendsAuditWithWrite).toBe(true);

    let other: Rekey | undefined;
    const outcomes: Record<string, string> = {};
    const rekey = createRekey({
      store: firstStore,
      surface: "library",
      baseUrl: sandbox.url,
      env,
      hooks: {
        afterStep: async (step) => {
          if (other === undefined || !["verified", "audited", "intent-cleared"].includes(step)) {
            return;
          }
          outcomes[step] = await other.rotateKey({ force: true }).then(
            () => "rotated",
            (error: unknown) => (isRekeyError(error) ? error.code : String(error)),
          );
        },
      },
    });
    cleanups.push(() => rekey.close());
    await rekey.register({});
    other = createRekey({
      store: secondStore,
      surface: "library",
      baseUrl: sandbox.url,
      env,
      lockWaitMs: 300,
    });
    cleanups.push(async () => other?.close());

    await rekey.rotateKey({ force: true });
    expect(outcomes).toEqual({
      verified: "ROTATION_IN_PROGRESS",
      audited: "ROTATION_IN_PROGRESS",
      "intent-cleared": "ROTATION_IN_PROGRESS",
    });
    const entries = await secondStore.readAudit();
    expect(entries.filter((entry) => entry.action === "rotate")).toHaveLength(1);
    expect(verifyAuditChain(entries).ok).toBe(true);
  });
});
