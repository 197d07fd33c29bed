import { mkdirSync, mkdtempSync, readFileSync, rmSync, statSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterEach, beforeEach, describe, expect, it } from "vitest";
import { createTestClock } from "./clock.js";
import { ok, refused, registerOperator, text } from "./conformance.test-helper.js";
import { startSandbox } from "./server.js";

let directory: string;
let dataFile: string;

beforeEach(() => {
  directory = mkdtempSync(join(tmpdir(), "rekey-sandbox-"));
  dataFile = join(directory, "state", "faucet.json");
});
afterEach(() => rmSync(directory, { recursive: true, force: true }));

describe("dataFile", () => {
  it("survives a restart: keys, balances, cooldowns and replays", async () => {
    const clock = createTestClock();
    const first = await startSandbox({ dataFile, clock });
    const operator = await registerOperator(first.url);
    await ok(first.url, { action: "sandbox_credit", api_key: operator.apiKey, amount_sats: 500 });
    const rotate = {
      action: "regenerate_operator_key",
      api_key: operator.apiKey,
      request_id: "before-restart",
    };
    const rotated = await ok(first.url, rotate);
    const newKey = text(rotated, "api_key");
    await first.close();

    const second = await startSandbox({ dataFile, clock });
    try {
      await refused(second.url, { action: "whoami", api_key: operator.apiKey }, "invalid_api_key");
      expect(await ok(second.url, { action: "get_balance", api_key: newKey })).toMatchObject({
        balance_sats: 500,
      });
      await refused(
        second.url,
        { action: "withdraw", api_key: newKey, amount_sats: 1 },
        "cooldown_active",
      );
      expect(await ok(second.url, rotate)).toEqual(rotated);
      expect(second.stats().rotations).toBe(0);
      const recovered = await ok(second.url, {
        action: "recover",
        recovery_code: operator.recoveryCode,
      });
      expect(recovered.operator_id).toBe(operator.operatorId);
      const another = await registerOperator(second.url);
      expect(another.operatorId).toBe(operator.operatorId + 1);
    } finally {
      await second.close();
    }
  });

  it("writes a 0600 file holding no raw key or recovery code", async () => {
    const sandbox = await startSandbox({ dataFile });
    try {
      const operator = await registerOperator(sandbox.url);
      const rotated = await ok(sandbox.url, {
        action: "regenerate_operator_key",
        api_key: operator.apiKey,
        request_id: "sealed",
      });
      expect(statSync(dataFile).mode & 0o777).toBe(0o600);
      const contents = readFileSync(dataFile, "utf8");
      for (const secret of [operator.apiKey, operator.recoveryCode, text(rotated, "api_key")]) {
        expect(contents).not.toContain(secret);
        expect(contents).not.toContain(secret.slice(3, 20));
      }
    } finally {
      await sandbox.close();
    }
  });

  it("refuses to start on a corrupt data file", async () => {
    mkdirSync(join(directory, "state"));
    writeFileSync(dataFile, "{ half a state");
    await expect(startSandbox({ dataFile })).rejects.toThrow(/not valid JSON/);
    writeFileSync(dataFile, JSON.stringify({ version: 1, operators: "none" }));
    await expect(startSandbox({ dataFile })).rejects.toThrow(/not a valid state/);
  });

  it("answers internal and changes nothing when the file cannot be written", async () => {
    const sandbox = await startSandbox({ dataFile });
    try {
      const operator = await registerOperator(sandbox.url);
      // A non-empty directory where the file should go makes the rename fail.
      rmSync(dataFile);
      mkdirSync(join(dataFile, "blocker"), { recursive: true });
      await refused(
        sandbox.url,
        { action: "regenerate_operator_key", api_key: operator.apiKey },
        "internal",
        500,
      );
      await ok(sandbox.url, { action: "whoami", api_key: operator.apiKey });
      expect(sandbox.stats().rotations).toBe(0);
      rmSync(dataFile, { recursive: true });
      const next = await registerOperator(sandbox.url);
      expect(next.operatorId).toBe(operator.operatorId + 1);
    } finally {
      await sandbox.close();
    }
  });
});

it("100 parallel rotations with a data file still yield exactly one new key", async () => {
  const sandbox = await startSandbox({ dataFile });
  try {
    const operator = await registerOperator(sandbox.url);
    const replies = await Promise.all(
      Array.from({ length: 100 }, () =>
        fetch(sandbox.url, {
          method: "POST",
          body: JSON.stringify({ action: "regenerate_operator_key", api_key: operator.apiKey }),
        }).then((response) => response.json() as Promise<{ success: boolean; code?: string }>),
      ),
    );
    expect(replies.filter((reply) => reply.success)).toHaveLength(1);
    expect(replies.filter((reply) => reply.code === "invalid_api_key")).toHaveLength(99);
  } finally {
    await sandbox.close();
  }
});
