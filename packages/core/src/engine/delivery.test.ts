import { mkdir, readFile, writeFile } from "node:fs/promises";
import { join } from "node:path";
import { afterEach, beforeEach, describe, expect, it } from "vitest";
import { publicClientKey } from "../delivery/public-client.test-helper.js";
import { agent, OPERATOR } from "../principal.js";
import { verifyAuditChain } from "../store/audit-chain.js";
import { openKey } from "../store/encryption/sealed-key.js";
import { type EngineFixture, startEngineFixture, storedKey } from "./engine.test-helper.js";

let fixture: EngineFixture;
beforeEach(async () => {
  fixture = await startEngineFixture({ store: "file" });
});
afterEach(async () => {
  await fixture.close();
});

/** An exec target that appends what it receives to `log`, and fails while `down` exists. */
async function receiver(name: string) {
  const dir = join(fixture.dir, name);
  await mkdir(dir, { recursive: true, mode: 0o700 });
  const log = join(dir, "received");
  const down = join(dir, "down");
  const script = `const fs=require("fs");if(fs.existsSync(${JSON.stringify(down)})){console.error("receiver is down");process.exit(1)}let k="";process.stdin.on("data",c=>k+=c).on("end",()=>fs.appendFileSync(${JSON.stringify(log)},k))`;
  return {
    command: [process.execPath, "-e", script],
    received: async () => (await readFile(log, "utf8").catch(() => "")).split("\n").filter(Boolean),
    setDown: (isDown: boolean) =>
      isDown
        ? writeFile(down, "")
        : import("node:fs/promises").then((fs) => fs.rm(down, { force: true })),
  };
}

describe("delivery after rotation", () => {
  it("an operator and an agent rotation rewrite the lightning-wallet file the public client reads", async () => {
    const rekey = fixture.rekey();
    await rekey.register({ name: "ops" });
    const { agentId } = await rekey.createAgent({ name: "bot" });
    const home = join(fixture.dir, "lw");
    const file = join(home, "credentials.json");
    const added = await rekey.addDeliveryTarget({ kind: "lightning-wallet", path: file });
    expect(added).toMatchObject({ target: "lightning-wallet-1", outcome: { status: "delivered" } });
    await rekey.addDeliveryTarget({ kind: "lightning-wallet", path: file }, agent(agentId));
    expect(publicClientKey({ LIGHTNING_WALLET_HOME: home }, "/")?.apiKey).toBe(
      openKey((await storedKey(fixture.store, "operator"))?.key ?? ""),
    );

    const rotated = await rekey.rotateKey();
    expect(rotated.deliveries).toEqual([
      expect.objectContaining({
        target: "lightning-wallet-1",
        status: "delivered",
        fingerprint: rotated.newFingerprint,
      }),
    ]);
    const operatorKey = openKey((await storedKey(fixture.store, "operator"))?.key ?? "");
    expect(publicClientKey({ LIGHTNING_WALLET_HOME: home }, "/")?.apiKey).toBe(operatorKey);
    await expect(fixture.client.whoami(operatorKey)).resolves.toMatchObject({ type: "operator" });

    const agentRotated = await rekey.rotateKey({ target: agent(agentId) });
    expect(agentRotated.deliveries?.[0]).toMatchObject({ status: "delivered" });
    const written = JSON.parse(await readFile(file, "utf8"));
    expect(written.operator.api_key).toBe(operatorKey);
    expect(written.agent.api_key).toBe(
      openKey((await storedKey(fixture.store, agentId))?.key ?? ""),
    );
    expect(written.active).toBe("operator");

    // Every step is in the audit log with the principal and fingerprints, never a key.
    const deliveries = (await rekey.history()).filter((entry) => entry.action === "deliver");
    expect(deliveries.map((entry) => entry.outcome)).toEqual([
      "pending",
      "success",
      "pending",
      "success",
      "pending",
      "success",
      "pending",
      "success",
    ]);
    expect(deliveries.at(-1)).toMatchObject({
      principal: `agent:${agentId}`,
      newFingerprint: agentRotated.newFingerprint,
      deliveryTarget: expect.stringContaining("lightning-wallet-1"),
    });
    expect(JSON.stringify(await rekey.history())).not.toContain(operatorKey);
    expect(await rekey.verifyHistory()).toMatchObject({ ok: true });
    expect((await rekey.status()).deliveries).toEqual([
      expect.objectContaining({ target: "lightning-wallet-1", state: "current" }),
    ]);
  });

  it("a failed delivery never undoes or hides the rotation: failing in status, backed off, retried", async () => {
    const rekey = fixture.rekey();
    await rekey.register({});
    const oldKey = openKey((await storedKey(fixture.store, "operator"))?.key ?? "");
    const target = await receiver("svc");
    await rekey.addDeliveryTarget({ kind: "exec", command: target.command });
    await target.setDown(true);
    const rotated = await rekey.rotateKey();
    expect(rotated.deliveries).toEqual([
      expect.objectContaining({
        status: "failed",
        error: {
          code: "UPSTREAM_UNAVAILABLE",
          message: expect.stringContaining("exited with code 1"),
        },
      }),
    ]);
    // The rotation stands: the new key is stored and works.
    const stored = await storedKey(fixture.store, "operator");
    expect(stored?.fingerprint).toBe(rotated.newFingerprint);
    const status = await rekey.status();
    expect(status.deliveries).toEqual([
      expect.objectContaining({
        target: "exec-1",
        state: "failing",
        deliveredFingerprint: rotated.oldFingerprint,
      }),
    ]);

    // Backing off: a process that opens the store now leaves it; after the back-off it retries.
    await target.setDown(false);
    expect(await fixture.rekey().finishDeliveries()).toEqual([]);
    fixture.clock.advance(31_000);
    expect(await fixture.rekey().finishDeliveries()).toEqual([
      expect.objectContaining({ status: "delivered", fingerprint: rotated.newFingerprint }),
    ]);
    expect(await target.received()).toEqual([oldKey, openKey(stored?.key ?? "")]);
    expect((await rekey.status()).deliveries?.[0]?.state).toBe("current");
  });

  it("two rotations while a target is down: it receives the newest key only, and retry ignores the back-off", async () => {
    const rekey = fixture.rekey();
    await rekey.register({});
    const target = await receiver("svc");
    await rekey.addDeliveryTarget({ kind: "exec", command: target.command });
    const first = await target.received();
    await target.setDown(true);
    await rekey.rotateKey();
    const second = await rekey.rotateKey({ force: true });
    await target.setDown(false);
    const retried = await rekey.deliver();
    expect(retried).toEqual([
      expect.objectContaining({ status: "delivered", fingerprint: second.newFingerprint }),
    ]);
    const newest = openKey((await storedKey(fixture.store, "operator"))?.key ?? "");
    expect(await target.received()).toEqual([...first, newest]);
    // Nothing left to do: a second retry reports it current and delivers nothing.
    expect(await rekey.deliver()).toEqual([expect.objectContaining({ status: "current" })]);
  });

  it("remove, duplicates, unknown ids, bad targets are refused clearly and change nothing", async () => {
    const rekey = fixture.rekey();
    await rekey.register({});
    const file = join(fixture.dir, "lw", "credentials.json");
    await rekey.addDeliveryTarget({ kind: "lightning-wallet", path: file });
    await expect(
      rekey.addDeliveryTarget({ kind: "lightning-wallet", path: file }),
    ).rejects.toMatchObject({
      code: "INVALID_INPUT",
      message: expect.stringContaining("already configured as lightning-wallet-1"),
    });
    await expect(
      rekey.addDeliveryTarget({
        kind: "webhook",
        url: "http://example.com/x",
        secretFile: "/tmp/s",
      }),
    ).rejects.toMatchObject({ code: "CONFIG_INVALID" });
    await expect(
      rekey.addDeliveryTarget({ kind: "store", location: "postgres://u:secret@db/rekey" }),
    ).rejects.toMatchObject({ code: "CONFIG_INVALID" });
    await expect(
      rekey.addDeliveryTarget({ kind: "dotenv", path: "relative/.env", variable: "X" }),
    ).rejects.toMatchObject({ code: "INVALID_INPUT" });
    await expect(rekey.removeDeliveryTarget("exec-9")).rejects.toMatchObject({ code: "NOT_FOUND" });
    expect((await rekey.listDeliveryTargets()).targets.map((target) => target.target)).toEqual([
      "lightning-wallet-1",
    ]);
    await rekey.removeDeliveryTarget("lightning-wallet-1");
    expect((await rekey.listDeliveryTargets()).targets).toEqual([]);
    expect((await rekey.rotateKey()).deliveries).toBeUndefined();
  });

  it("a store target gives an agent's own store only the agent's key, newest first", async () => {
    const { createFileStore } = await import("../store/file-store.js");
    const rekey = fixture.rekey({
      delivery: { openStore: async (location) => createFileStore({ dir: location, env: {} }) },
    });
    await rekey.register({});
    const { agentId } = await rekey.createAgent({ name: "bot" });
    const agentHome = join(fixture.dir, "agent-host");
    await rekey.addDeliveryTarget({ kind: "store", location: agentHome }, agent(agentId));
    const rotated = await rekey.rotateKey({ target: agent(agentId) });
    expect(rotated.deliveries?.[0]).toMatchObject({ status: "delivered" });
    const agentStore = createFileStore({ dir: agentHome, env: {} });
    const { createRekey } = await import("./create-rekey.js");
    const onAgentHost = createRekey({
      store: agentStore,
      surface: "library",
      clock: fixture.clock,
      env: {},
    });
    const status = await onAgentHost.status();
    expect(status).toMatchObject({
      principal: agent(agentId),
      fingerprint: rotated.newFingerprint,
      cooldownUntil: rotated.cooldownUntil,
    });
    const { data } = await agentStore.read();
    expect(Object.values(data.principals).map((record) => record.principal)).toEqual([
      `agent:${agentId}`,
    ]);
    await expect(
      fixture.client.whoami((await onAgentHost.keyProvider.current()).key),
    ).resolves.toMatchObject({ type: "agent", id: agentId });
    await onAgentHost.close();
    await agentStore.close();
    expect((await rekey.status(OPERATOR)).deliveries).toBeUndefined();
  });
});

describe("places a target must not be", () => {
  it("refuses a file target inside rekey's own store, and leaves the store readable", async () => {
    const rekey = fixture.rekey();
    await rekey.register({});
    for (const path of [join(fixture.dir, "credentials.json"), join(fixture.dir, "audit.jsonl")]) {
      await expect(
        rekey.addDeliveryTarget({ kind: "dotenv", path, variable: "X" }),
      ).rejects.toMatchObject({ code: "INVALID_INPUT" });
      await expect(
        rekey.addDeliveryTarget({ kind: "lightning-wallet", path }),
      ).rejects.toMatchObject({ code: "INVALID_INPUT" });
    }
    await expect(
      rekey.addDeliveryTarget({ kind: "store", location: fixture.dir }),
    ).rejects.toMatchObject({ code: "INVALID_INPUT" });
    expect(verifyAuditChain(await rekey.history()).ok).toBe(true);
    expect((await rekey.status()).deliveries ?? []).toEqual([]);
  });

  it("refuses a second principal on the same .env variable, naming the first", async () => {
    const rekey = fixture.rekey();
    await rekey.register({});
    const { agentId } = await rekey.createAgent({ name: "bot" });
    const path = join(fixture.dir, "..", `shared-${agentId}.env`);
    await writeFile(path, "A=1\n", { mode: 0o600 });
    await rekey.addDeliveryTarget({ kind: "dotenv", path, variable: "LIGHTNING_WALLET_API_KEY" });
    await expect(
      rekey.addDeliveryTarget(
        { kind: "dotenv", path, variable: "LIGHTNING_WALLET_API_KEY" },
        agent(agentId),
      ),
    ).rejects.toMatchObject({
      code: "INVALID_INPUT",
      message: expect.stringContaining("operator"),
    });
    await rekey.addDeliveryTarget({ kind: "dotenv", path, variable: "AGENT_KEY" }, agent(agentId));
  });
});
