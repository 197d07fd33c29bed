import { readFile, writeFile } from "node:fs/promises";
import { join } from "node:path";
import { fingerprint } from "@rekey/core";
import { afterEach, beforeEach, describe, expect, it } from "vitest";
import { type Harness, startHarness } from "./harness.test-helper.js";

let harness: Harness;
beforeEach(async () => {
  harness = await startHarness();
});
afterEach(async () => {
  await harness.close();
});

describe("POST /v1/rotate with delivery targets", () => {
  it("lists each delivery (delivered, failed) without a key; a failed one does not fail the rotation", async () => {
    const envFile = join(harness.dir, "svc.env");
    await writeFile(envFile, "LIGHTNING_WALLET_API_KEY=old\n", { mode: 0o600 });
    await harness.rekey.addDeliveryTarget({
      kind: "dotenv",
      path: envFile,
      variable: "LIGHTNING_WALLET_API_KEY",
    });
    await harness.rekey
      .addDeliveryTarget({ kind: "exec", command: [process.execPath, "-e", "process.exit(3)"] })
      .catch(() => undefined);
    const response = await harness.call("POST", "/v1/rotate", { body: {} });
    expect(response.status).toBe(200);
    const text = await response.text();
    const body = JSON.parse(text) as { fingerprint: string; deliveries: unknown[] };
    expect(body.deliveries).toEqual([
      {
        target: "dotenv-1",
        kind: "dotenv",
        description: `dotenv ${envFile} (LIGHTNING_WALLET_API_KEY)`,
        status: "delivered",
        fingerprint: body.fingerprint,
      },
      expect.objectContaining({
        target: "exec-1",
        status: "failed",
        error: {
          code: "UPSTREAM_UNAVAILABLE",
          message: expect.stringContaining("exited with code 3"),
        },
      }),
    ]);
    const delivered = /=(.*)\n/.exec(await readFile(envFile, "utf8"))?.[1] ?? "";
    expect(fingerprint(delivered)).toBe(body.fingerprint);
    expect(text).not.toContain(delivered);
    const status = await harness.call("GET", "/v1/status", { token: harness.tokens.status });
    expect(((await status.json()) as { deliveries: unknown[] }).deliveries).toEqual([
      expect.objectContaining({
        target: "dotenv-1",
        state: "current",
        delivered_fingerprint: body.fingerprint,
      }),
      expect.objectContaining({
        target: "exec-1",
        state: "failing",
        error: expect.objectContaining({ code: "UPSTREAM_UNAVAILABLE" }),
      }),
    ]);
  });
});
