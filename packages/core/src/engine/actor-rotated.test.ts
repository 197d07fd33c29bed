import { afterEach, describe, expect, it } from "vitest";
import { agent, OPERATOR } from "../principal.js";
import { openKey } from "../store/encryption/sealed-key.js";
import type { CredentialStore } from "../store/types.js";
import type { RotationStep } from "./context.js";
import { type EngineFixture, startEngineFixture, storedKey } from "./engine.test-helper.js";

/**
 * An operator rotating an agent's key while another process rotates the operator's own key: the
 * agent's rotation read the operator key before that rotation committed, and the faucet refuses
 * it once the operator key has changed. The rotation takes the operator's new key and goes on.
 */
let fixture: EngineFixture | undefined;
afterEach(async () => {
  await fixture?.close();
  fixture = undefined;
});

/** A promise and its resolver, to order two engines step by step. */
function gate(): { opened: Promise<void>; open(): void } {
  let open = () => {};
  const opened = new Promise<void>((resolve) => {
    open = resolve;
  });
  return { opened, open };
}

/** `store`, holding back the first request for the lock named `lockPart` until `until` opens. */
function holdingLock(
  store: CredentialStore,
  lockPart: string,
  asked: () => void,
  until: Promise<void>,
): CredentialStore {
  let held = false;
  return {
    ...store,
    kind: store.kind,
    location: store.location,
    read: (options) => store.read(options),
    compareAndSet: (version, data, options) => store.compareAndSet(version, data, options),
    appendAudit: (event) => store.appendAudit(event),
    readAudit: () => store.readAudit(),
    watch: (listener) => store.watch(listener),
    checkWritable: () => store.checkWritable(),
    health: () => store.health(),
    close: async () => {},
    lock: async (name, options) => {
      if (!held && name.includes(lockPart)) {
        held = true;
        asked();
        await until;
      }
      return store.lock(name, options);
    },
  };
}

describe.each(["memory", "file"] as const)("store %s", (storeKind) => {
  it("an agent's rotation whose operator key was rotated meanwhile retries with the new key", async () => {
    fixture = await startEngineFixture({ store: storeKind });
    const setup = fixture.rekey();
    await setup.register({});
    const { agentId } = await setup.createAgent({ name: "w" });
    const agentBefore = await storedKey(fixture.store, agentId);

    const agentAsksLock = gate();
    const agentTakesLock = gate();
    const operatorUpstream = gate();
    const operatorMayStore = gate();
    const operatorStored = gate();
    // The operator's rotation: stops once the faucet rotated, until the agent's rotation has
    // read the (still stored) old operator key and journaled.
    const rotatingOperator = fixture.rekey({
      hooks: {
        async afterStep(step: RotationStep | string, principal) {
          if (principal.kind !== "operator") return;
          if (step === "upstream-replied") {
            operatorUpstream.open();
            await operatorMayStore.opened;
          }
          if (step === "key-stored") operatorStored.open();
        },
      },
    });
    // The agent's rotation, by the operator: it has resolved leftovers (none) and waits for the
    // agent's lock while the operator's rotation starts; it then reads the old operator key,
    // and calls the faucet only once the operator's new key is stored.
    const rotatingAgent = fixture.rekey({
      store: holdingLock(
        fixture.store,
        `agent:${agentId}`,
        agentAsksLock.open,
        agentTakesLock.opened,
      ),
      hooks: {
        async afterStep(step: RotationStep | string, principal) {
          if (step !== "intent-written" || principal.kind !== "agent") return;
          operatorMayStore.open();
          await operatorStored.opened;
        },
      },
    });

    const agentRun = rotatingAgent.rotateKey({ target: agent(agentId), force: true });
    await agentAsksLock.opened;
    const operatorRun = rotatingOperator.rotateKey({ target: OPERATOR, force: true });
    await operatorUpstream.opened;
    agentTakesLock.open();
    const [agentResult, operatorResult] = await Promise.all([agentRun, operatorRun]);

    // Both rotations succeeded, and each stored key is the one the faucet accepts.
    expect(agentResult.oldFingerprint).toBe(agentBefore?.fingerprint);
    const agentNow = await storedKey(fixture.store, agentId);
    expect(agentNow?.fingerprint).toBe(agentResult.newFingerprint);
    await expect(fixture.client.whoami(openKey(agentNow?.key ?? ""))).resolves.toMatchObject({
      type: "agent",
      id: agentId,
    });
    const operatorNow = await storedKey(fixture.store, "operator");
    expect(operatorNow?.fingerprint).toBe(operatorResult.newFingerprint);
    // No failure was audited; each rotation has its success entry.
    const history = await setup.history();
    expect(history.filter((entry) => entry.outcome === "failure")).toEqual([]);
    expect(
      history.filter((entry) => entry.action === "rotate" && entry.outcome === "success"),
    ).toHaveLength(2);
  });

  it("an agent's rotation refused while the operator's rotation is in flight waits for it and retries", async () => {
    fixture = await startEngineFixture({ store: storeKind });
    const setup = fixture.rekey();
    await setup.register({});
    const { agentId } = await setup.createAgent({ name: "w" });

    const agentAsksLock = gate();
    const agentTakesLock = gate();
    const operatorUpstream = gate();
    const agentAsksOperatorLock = gate();
    // The operator's rotation stops once the faucet rotated, and stores the new key only once
    // the agent's rotation, refused, asks for the operator's lock.
    const rotatingOperator = fixture.rekey({
      hooks: {
        async afterStep(step: RotationStep | string, principal) {
          if (principal.kind !== "operator" || step !== "upstream-replied") return;
          operatorUpstream.open();
          await agentAsksOperatorLock.opened;
        },
      },
    });
    const agentLocks = holdingLock(
      fixture.store,
      `agent:${agentId}`,
      agentAsksLock.open,
      agentTakesLock.opened,
    );
    const rotatingAgent = fixture.rekey({
      store: {
        ...agentLocks,
        lock: (name, options) => {
          if (name.includes("operator:")) agentAsksOperatorLock.open();
          return agentLocks.lock(name, options);
        },
      },
    });

    const agentRun = rotatingAgent.rotateKey({ target: agent(agentId), force: true });
    await agentAsksLock.opened;
    const operatorRun = rotatingOperator.rotateKey({ target: OPERATOR, force: true });
    await operatorUpstream.opened;
    agentTakesLock.open();
    const [agentResult, operatorResult] = await Promise.all([agentRun, operatorRun]);

    expect((await storedKey(fixture.store, agentId))?.fingerprint).toBe(agentResult.newFingerprint);
    expect((await storedKey(fixture.store, "operator"))?.fingerprint).toBe(
      operatorResult.newFingerprint,
    );
    const history = await setup.history();
    expect(history.filter((entry) => entry.outcome === "failure")).toEqual([]);
  });

  it("a refusal of the operator key the store still holds is reported and audited as before", async () => {
    fixture = await startEngineFixture({ store: storeKind });
    const rekey = fixture.rekey();
    await rekey.register({});
    const { agentId } = await rekey.createAgent({ name: "w" });
    // The operator key is rotated at the faucet behind the store's back: the stored one is dead.
    const operatorKey = openKey((await storedKey(fixture.store, "operator"))?.key ?? "");
    await fixture.client.regenerateOperatorKey(operatorKey, {});
    const error = await rekey.rotateKey({ target: agent(agentId), force: true }).then(
      () => undefined,
      (caught: unknown) => caught,
    );
    expect(error).toMatchObject({ code: "UNAUTHORIZED" });
    expect((await rekey.history()).at(-1)).toMatchObject({
      action: "rotate",
      outcome: "failure",
      errorCode: "UNAUTHORIZED",
    });
  });
});
