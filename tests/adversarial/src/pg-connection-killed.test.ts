import { mkdtemp, rm } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import {
  createRekey,
  isRekeyError,
  openCredentialStore,
  type RotationStep,
  verifyAuditChain,
} from "@rekey/core";
import { startSandbox } from "@rekey/sandbox";
import {
  dropPostgresSchema,
  queryPostgres,
  TEST_MASTER_KEY_ENV,
} from "@rekey/store-postgres/testing";
import { postgresUrlStores } from "@rekey/store-postgres/url-stores";
import { afterAll, describe, expect, inject, it } from "vitest";

/**
 * Fault point: the PostgreSQL server kills every connection of the store (its data pool, its
 * lock session, its LISTEN connection) at each step of a rotation, as a failover or an
 * administrator's pg_terminate_backend would. The rotation must still end with the issued key
 * stored (or a loud, recorded KEY_LOST) and every committed rotation audited.
 */

const pgUrl = inject("postgresUrl");
const STEPS: RotationStep[] = [
  "intent-written",
  "upstream-replied",
  "key-stored",
  "verified",
  "audited",
];
const roots: string[] = [];

afterAll(async () => {
  await Promise.all(roots.map((root) => rm(root, { recursive: true, force: true })));
});

describe.skipIf(pgUrl === "")("PostgreSQL connections killed mid-rotation", () => {
  for (const requestIdSupport of [true, false]) {
    it.each(STEPS)(`after %s (request_id: ${requestIdSupport})`, async (at) => {
      const schema = `conn_killed_${at.replace(/\W/g, "_")}_${requestIdSupport ? "rid" : "norid"}`;
      const application = `rekey-killed-${schema}`.slice(0, 60);
      await dropPostgresSchema(pgUrl, schema);
      const url = new URL(pgUrl);
      url.searchParams.set("schema", schema);
      url.searchParams.set("application_name", application);
      const root = await mkdtemp(join(tmpdir(), "rekey-pg-killed-"));
      roots.push(root);
      const sandbox = await startSandbox({ port: 0, requestIdSupport });
      const open = () =>
        openCredentialStore({
          spec: url.href,
          env: TEST_MASTER_KEY_ENV,
          urlStores: postgresUrlStores,
        });
      const env = { REKEY_RESCUE_DIR: join(root, "rescue"), ...TEST_MASTER_KEY_ENV };
      const store = await open();
      let next: Awaited<ReturnType<typeof open>> | undefined;
      try {
        const engine = (hooks = {}) =>
          createRekey({
            store,
            surface: "library",
            baseUrl: sandbox.url,
            env,
            storeRetryMs: 5_000,
            hooks,
          });
        await engine().register({});
        let killed = 0;
        const rotating = engine({
          async afterStep(step: RotationStep) {
            if (step !== at) return;
            const result = await queryPostgres(
              pgUrl,
              "SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE application_name = $1",
              [application],
            );
            killed = result.rowCount ?? 0;
          },
        });
        const outcome = await rotating.rotateKey({ force: true }).then(
          () => undefined,
          (error: unknown) => error,
        );
        expect(killed, "connections killed").toBeGreaterThan(0);
        if (outcome !== undefined) {
          expect(isRekeyError(outcome), String(outcome)).toBe(true);
          expect(isRekeyError(outcome, "INTERNAL")).toBe(false);
        }
        const committed = sandbox.stats().rotations;

        // The next process (its own store handle) finishes what was left.
        next = await open();
        const after = createRekey({ store: next, surface: "library", baseUrl: sandbox.url, env });
        await after.resolvePending().catch((error: unknown) => {
          if (!isRekeyError(error, "KEY_LOST")) throw error;
        });
        const status = await after.status();
        if (status.hasKey)
          await expect(after.whoami()).resolves.toMatchObject({ type: "operator" });
        else expect(status.keyLost, "a loss is recorded, never silent").toBeDefined();
        const audit = await next.readAudit();
        expect(verifyAuditChain(audit).ok).toBe(true);
        const audited = audit.filter(
          (entry) =>
            (entry.action === "rotate" || entry.action === "resolve") &&
            (entry.outcome === "success" ||
              entry.outcome === "recovered" ||
              entry.outcome === "key_lost"),
        ).length;
        expect(audited, "committed rotations audited").toBeGreaterThanOrEqual(committed);
        // With request_id nothing is lost, whatever the step.
        if (requestIdSupport) expect(status.keyLost).toBeUndefined();
      } finally {
        await store.close();
        await next?.close();
        await sandbox.close();
        await dropPostgresSchema(pgUrl, schema);
      }
    });
  }
});
