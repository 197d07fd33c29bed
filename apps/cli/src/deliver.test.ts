import { execFileSync } from "node:child_process";
import { readFile, writeFile } from "node:fs/promises";
import { join, resolve } from "node:path";
import { createFaucetClient, fingerprint } from "@rekey/core";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import {
  type CliHarness,
  RAW_SECRET,
  registerOperator,
  startCliHarness,
} from "./cli-harness.test-helper.js";
import { targetSpecOf } from "./commands/deliver.js";
import {
  allAgentsDocument,
  deliverAddDocument,
  deliverListDocument,
  deliverRunDocument,
  doctorDocument,
  rotationDocument,
  statusDocument,
} from "./json-schemas.test-helper.js";

let harness: CliHarness;
beforeAll(async () => {
  harness = await startCliHarness();
  await registerOperator(harness);
});
afterAll(() => harness.close());

/** The key the public client would use from a lightning-wallet home, and whether the faucet takes it. */
async function lightningWalletKey(home: string) {
  const file = JSON.parse(await readFile(join(home, "credentials.json"), "utf8"));
  const key: string = file[file.active].api_key;
  const client = createFaucetClient({ baseUrl: harness.sandbox.url });
  return { fingerprint: fingerprint(key), identity: await client.whoami(key) };
}

describe("rekey deliver", () => {
  it("adds the lightning-wallet file, and rotate rewrites it: the public client keeps working", async () => {
    const added = await harness.runJson(["deliver", "add", "lightning-wallet"]);
    expect(added.code, added.stderr).toBe(0);
    expect(deliverAddDocument.parse(added.json)).toMatchObject({
      principal: { kind: "operator" },
      target: "lightning-wallet-1",
      delivery: { status: "delivered" },
    });
    const home = join(harness.dir, ".lightning-wallet");

    const rotated = await harness.runJson(["rotate", "--yes"]);
    expect(rotated.code, rotated.stderr).toBe(0);
    const document = rotationDocument.parse(rotated.json);
    expect(document.deliveries).toEqual([
      expect.objectContaining({
        target: "lightning-wallet-1",
        status: "delivered",
        fingerprint: document.fingerprint,
      }),
    ]);
    expect(await lightningWalletKey(home)).toMatchObject({
      fingerprint: document.fingerprint,
      identity: { type: "operator" },
    });

    const listed = deliverListDocument.parse((await harness.runJson(["deliver", "list"])).json);
    expect(listed.targets).toEqual([
      expect.objectContaining({ state: "current", delivered_fingerprint: document.fingerprint }),
    ]);
    const human = await harness.run(["rotate", "--yes", "--force"]);
    expect(human.stdout).toMatch(
      /deliveries:\n\s+delivered lightning-wallet-1 fp:[0-9a-f]{12} lightning-wallet /,
    );
    expect(`${human.stdout}${human.stderr}${rotated.stdout}`).not.toMatch(RAW_SECRET);
  });

  it("a failing target: rotate still succeeds, status says failing, doctor exits 11, retry fixes it", async () => {
    const envFile = join(harness.dir, "svc.env");
    await writeFile(envFile, "# svc\nLIGHTNING_WALLET_API_KEY=old\n", { mode: 0o600 });
    expect((await harness.run(["deliver", "add", "dotenv", envFile])).code).toBe(0);
    // Made unreadable to rekey's checks (open to others) after it was added.
    const { chmod } = await import("node:fs/promises");
    await chmod(envFile, 0o644);
    const rotated = await harness.runJson(["rotate", "--yes", "--force"]);
    expect(rotated.code).toBe(0);
    const document = rotationDocument.parse(rotated.json);
    expect(document.deliveries?.find((outcome) => outcome.target === "dotenv-1")).toMatchObject({
      status: "failed",
      error: { code: "CONFIG_INVALID" },
    });

    const status = statusDocument.parse((await harness.runJson(["status"])).json);
    expect(status.fingerprint).toBe(document.fingerprint);
    expect(status.deliveries?.find((target) => target.target === "dotenv-1")?.state).toBe(
      "failing",
    );
    const doctor = await harness.runJson(["doctor"]);
    expect(doctor.code).toBe(11);
    expect(doctorDocument.parse(doctor.json).ok).toBe(false);
    expect((await harness.run(["doctor"])).stdout).toMatch(
      /delivery operator:\d+ dotenv-1:\s+failing: holds fp:[0-9a-f]{12} \(Refusing .*mode 644/,
    );

    const failedRetry = await harness.run(["deliver", "retry"]);
    expect(failedRetry.code).toBe(2);
    await chmod(envFile, 0o600);
    const retried = await harness.runJson(["deliver", "retry"]);
    expect(retried.code, retried.stderr).toBe(0);
    expect(deliverRunDocument("deliver retry").parse(retried.json).deliveries).toEqual([
      expect.objectContaining({ target: "lightning-wallet-1", status: "current" }),
      expect.objectContaining({
        target: "dotenv-1",
        status: "delivered",
        fingerprint: document.fingerprint,
      }),
    ]);
    expect(await readFile(envFile, "utf8")).toMatch(
      /^# svc\nLIGHTNING_WALLET_API_KEY=lf_[A-Za-z0-9_-]+\n$/,
    );
    expect((await harness.run(["doctor"])).stdout).not.toContain("delivery ");
    expect((await harness.run(["deliver", "remove", "dotenv-1"])).code).toBe(0);
  });

  it("refuses bad targets clearly and keeps none of them", async () => {
    const missing = await harness.run(["deliver", "add", "dotenv", join(harness.dir, "nope.env")]);
    expect(missing.code).toBe(2);
    expect(missing.stderr).toContain("does not exist");
    const plainHttp = await harness.run([
      "deliver",
      "add",
      "webhook",
      "http://example.com/h",
      "--secret-file",
      "/tmp/x",
    ]);
    expect(plainHttp.code).toBe(2);
    const unknown = await harness.run(["deliver", "add", "carrier-pigeon", "x"]);
    expect(unknown.code).toBe(2);
    expect(unknown.stderr).toContain("lightning-wallet, dotenv, exec, store, webhook");
    const exec = await harness.run(["deliver", "add", "exec", "--", "/nonexistent/reload"]);
    expect(exec.code).toBe(2);
    expect((await harness.run(["deliver", "test", "exec-1"])).code).toBe(4);
    const listed = deliverListDocument.parse((await harness.runJson(["deliver", "list"])).json);
    expect(listed.targets.map((target) => target.target)).toEqual(["lightning-wallet-1"]);
  });

  it("rotate --all-agents lists each agent's deliveries", async () => {
    const created = await harness.runJson(["agents", "create", "fleet-1"]);
    const agentId = String((created.json as { agent_id: number }).agent_id);
    const envFile = join(harness.dir, `agent-${agentId}.env`);
    await writeFile(envFile, "LIGHTNING_WALLET_API_KEY=old\n", { mode: 0o600 });
    expect(
      (await harness.run(["deliver", "add", "--agent", agentId, "dotenv", envFile])).code,
    ).toBe(0);
    const rotated = await harness.runJson(["rotate", "--all-agents", "--yes", "--force", "--json"]);
    expect(rotated.code, rotated.stderr).toBe(0);
    const outcome = allAgentsDocument
      .parse(rotated.json)
      .results.find((result) => String(result.agent_id) === agentId);
    expect(outcome?.deliveries).toEqual([
      expect.objectContaining({
        target: "dotenv-1",
        status: "delivered",
        fingerprint: outcome?.fingerprint,
      }),
    ]);
  });
});

describe("deliver add fixes where a target is, when it is added", () => {
  it("makes a relative store directory and exec command absolute, and finds a bare command on PATH", () => {
    const defaults = { lightningWalletFile: "/unused", path: process.env.PATH };
    expect(targetSpecOf("store", ["other-store"], {}, defaults)).toEqual({
      kind: "store",
      location: resolve("other-store"),
    });
    expect(targetSpecOf("store", ["postgres://db/rekey"], {}, defaults)).toEqual({
      kind: "store",
      location: "postgres://db/rekey",
    });
    expect(targetSpecOf("exec", ["./reload.sh", "--now"], {}, defaults)).toEqual({
      kind: "exec",
      command: [resolve("./reload.sh"), "--now"],
    });
    const bare = targetSpecOf("exec", ["node", "-e", "0"], {}, defaults);
    expect(bare.kind === "exec" && bare.command[0]).toBe(
      execFileSync("sh", ["-c", "command -v node"], { encoding: "utf8" }).trim(),
    );
  });

  it("stores an exec target added with a bare command under its absolute path", async () => {
    const added = await harness.run(["deliver", "add", "exec", "--", "true"], {
      env: { PATH: process.env.PATH },
    });
    expect(added.code, added.stderr).toBe(0);
    const listed = await harness.runJson(["deliver", "list"]);
    const exec = (
      listed.json as { targets: { target: string; description: string }[] }
    ).targets.find((target) => target.target.startsWith("exec-"));
    expect(exec?.description).toMatch(/\/true\b/);
    expect((await harness.run(["deliver", "remove", exec?.target ?? ""])).code).toBe(0);
  });
});
