import { isRekeyError } from "@rekey/core";
import { sampleStoreData } from "@rekey/core/testing";
import { afterEach, beforeEach, describe, expect, it } from "vitest";
import { createPostgresStore, type PostgresStore } from "./postgres-store.js";
import { TEST_MASTER_KEY_ENV } from "./testing/master-key.js";

// pg reads the certificate files a URL names when it builds a connection, and throws
// synchronously when one is missing. No server is needed to see it: the file is read first.
const URL_WITH_MISSING_CERT =
  "postgres://rekey@127.0.0.1:1/rekey?sslmode=verify-full&sslrootcert=/nonexistent/root.crt";

describe("a store URL naming a missing certificate", () => {
  let store: PostgresStore;
  const unhandled: unknown[] = [];
  const record = (reason: unknown) => unhandled.push(reason);

  beforeEach(() => {
    unhandled.length = 0;
    process.on("unhandledRejection", record);
    process.on("uncaughtException", record);
    store = createPostgresStore({
      url: URL_WITH_MISSING_CERT,
      connectTimeoutMs: 1000,
      env: TEST_MASTER_KEY_ENV,
    });
  });
  afterEach(async () => {
    await store.close();
    process.off("unhandledRejection", record);
    process.off("uncaughtException", record);
  });

  it("is STORE_UNAVAILABLE with a hint on every path that opens a connection", async () => {
    const paths: Array<[string, () => Promise<unknown>]> = [
      ["read", () => store.read()],
      ["compareAndSet", () => store.compareAndSet(0, sampleStoreData("one"))],
      ["readAudit", () => store.readAudit()],
      [
        "appendAudit",
        () =>
          store.appendAudit({
            at: "2025-01-01T00:00:00.000Z",
            surface: "cli",
            profile: "default",
            principal: "operator",
            action: "rotate",
            outcome: "success",
          }),
      ],
      ["lock", () => store.lock("agent:7", { leaseMs: 5000, waitMs: 0 })],
      ["checkWritable", () => store.checkWritable()],
    ];
    for (const [name, call] of paths) {
      const error = await call().then(
        () => undefined,
        (caught: unknown) => caught,
      );
      expect(isRekeyError(error, "STORE_UNAVAILABLE"), `${name}: ${String(error)}`).toBe(true);
      expect((error as { hint?: string }).hint, name).toContain("sslrootcert");
    }
    const health = await store.health();
    expect(health.ok).toBe(false);
  });

  it("does not crash the process when a watcher starts the LISTEN connection", async () => {
    const stop = store.watch(() => {});
    // Long enough for the first attempt and one retry.
    await new Promise((resolve) => setTimeout(resolve, 1500));
    stop();
    expect(unhandled).toEqual([]);
  });
});
