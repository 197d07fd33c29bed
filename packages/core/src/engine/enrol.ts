import { isRekeyError, RekeyError } from "../errors.js";
import { fingerprint } from "../fingerprint.js";
import { agent, OPERATOR, principalLabel } from "../principal.js";
import { openKey } from "../store/encryption/sealed-key.js";
import { faucetIdOf, operatorRecordPrincipal, recordIdOf } from "../store/record-ids.js";
import type { AuditEventInput, KeySource, StoreData } from "../store/types.js";
import { killPoint } from "../testing/kill-points.js";
import { rotationLockName } from "./context.js";
import {
  activePrincipalOf,
  principalOfRecord,
  profileIn,
  recordIn,
  setKey,
  storedKeyOf,
  updateStore,
} from "./principal-records.js";
import { writeRescueFile } from "./rescue.js";
import { importAdvice } from "./rescued-keys.js";
import { audit, prepareAudit } from "./rotation-steps.js";
import type { Session } from "./session.js";
import type { Identity, Rekey } from "./types.js";

/**
 * Enrolment: a key that did not come from a rotation enters the store. `register` asks the
 * faucet for a new operator, `login` stores a key someone holds, `createAgent` a new agent's.
 */
export function createEnrolment(
  session: Session,
): Pick<Rekey, "register" | "login" | "createAgent"> {
  const {
    profileName,
    store,
    clock,
    readView,
    defaultUrl,
    baseUrl,
    client,
    context,
    ensureResolved,
    currentKey,
    recordPrincipalIn,
    keyProvider,
    withLock,
    profileLockName,
    keyIsAlive,
  } = session;
  /**
   * Stores a key that did not come from a rotation (registered, logged in, created) in its
   * principal's record, points the profile at it when `point` says so, and audits it.
   */
  async function storeNewKey(input: {
    recordPrincipal: string;
    key: string;
    source: KeySource;
    name?: string | undefined;
    operatorId?: number | undefined;
    action: AuditEventInput["action"];
    /** Changes the draft profile to point at the record; returns false to leave it. */
    point?: (profile: { operator?: string; actsAs?: string }, draft: StoreData) => void;
  }): Promise<string> {
    const fp = fingerprint(input.key);
    const savedAt = new Date(clock.now()).toISOString();
    const url = await baseUrl();
    let previous: string | undefined;
    await updateStore(
      store,
      (draft) => {
        const record = recordIn(draft, url, input.recordPrincipal);
        previous = record.fingerprint;
        setKey(record, { key: input.key, fingerprint: fp, savedAt, source: input.source });
        if (input.name !== undefined) record.name = input.name;
        if (input.operatorId !== undefined) record.operatorId = input.operatorId;
        delete record.alternates;
        if (input.point) input.point(profileIn(draft, profileName, url), draft);
      },
      () => keyProvider.invalidate(),
    );
    await audit(context, {
      principal: input.recordPrincipal,
      action: input.action,
      outcome: "success",
      ...(previous !== undefined && previous !== fp ? { oldFingerprint: previous } : {}),
      newFingerprint: fp,
    });
    return fp;
  }

  /**
   * A registered operator's key the store refused: written to a rescue file with its recovery
   * code (never dropped), and the error says where. A key that did reach the store (the audit
   * append failed after it) needs no rescue: the error is raised as it is.
   */
  async function rescueRegistered(
    reply: { operatorId: number; apiKey: string; recoveryCode: string },
    recordPrincipal: string,
    error: unknown,
  ): Promise<unknown> {
    const fp = fingerprint(reply.apiKey);
    const url = await baseUrl().catch(() => defaultUrl());
    const held = await store.read().then(
      (snapshot) => snapshot.data.principals[recordIdOf(url, recordPrincipal)]?.fingerprint === fp,
      () => false,
    );
    if (held) return error;
    const path = await writeRescueFile(context.rescueDir, store, {
      faucet: faucetIdOf(url),
      principal: recordPrincipal,
      key: reply.apiKey,
      source: "register",
      savedAt: new Date(clock.now()).toISOString(),
      operatorId: reply.operatorId,
      recoveryCode: reply.recoveryCode,
      profile: profileName,
    }).catch(() => undefined);
    return new RekeyError(
      "STORE_UNAVAILABLE",
      `Operator ${reply.operatorId} was registered (key ${fp}) but the credential store refused its key; ${path === undefined ? "no rescue file could be written either" : `the key and its recovery code were written to ${path}`}`,
      {
        hint:
          path === undefined
            ? "Keep the recovery code: `rekey recover` with it issues a new key once the store is fixed."
            : `Fix the store, then run \`${importAdvice({ path, source: "register", profile: profileName })}\`. The recovery code is in that file too.`,
        details: { principal: "operator", ...(path === undefined ? {} : { rescueFile: path }) },
        cause: error,
      },
    );
  }

  /**
   * The error for a key the faucet rejects: when the store knows it as the old key of one of
   * its rotations, it names that rotation and the key that replaced it.
   */
  async function staleKeyError(key: string, cause: RekeyError): Promise<RekeyError> {
    const fp = fingerprint(key);
    const view = await readView();
    const replaced = Object.values(view.data.principals).find(
      (record) => record.faucet === view.faucet && record.lastRotation?.oldFingerprint === fp,
    );
    if (replaced?.lastRotation === undefined) return cause;
    const label = principalLabel(principalOfRecord(replaced.principal));
    return new RekeyError(
      "UNAUTHORIZED",
      `The key ${fp} no longer works: the ${label} was rotated at ${replaced.lastRotation.rotatedAt}, and the store holds its current key ${replaced.fingerprint ?? "(none)"}`,
      {
        hint: `Nothing was stored. Act as it with --as ${replaced.principal} instead of logging in a copy.`,
        details: { principal: label },
        cause,
      },
    );
  }

  return {
    async register(input) {
      // The faucet creates the account and shows its recovery code once: the store must be
      // able to take the key before the faucet is asked.
      await store.checkWritable();
      await prepareAudit(context);
      // Under the profile's lock, so that of two registrations racing in one profile (two
      // processes) only one asks the faucet: the other would be refused below.
      return withLock(profileLockName(), async () => {
        const view = await readView();
        const acting = activePrincipalOf(view);
        if (acting && storedKeyOf(view, acting)) {
          throw new RekeyError(
            "CONFIG_INVALID",
            `Profile "${profileName}" already acts as the ${principalLabel(acting)} (${view.actsAs})`,
            { hint: "Use another profile (--profile NAME) for a second operator." },
          );
        }
        const reply = await (await client()).register({
          ...(input.name === undefined ? {} : { name: input.name }),
          ...(input.email === undefined ? {} : { email: input.email }),
        });
        // The account exists upstream from here: its recovery code is kept first.
        await input.onRecoveryCode?.(reply.recoveryCode);
        killPoint("register.upstream-replied");
        const recordPrincipal = operatorRecordPrincipal(reply.operatorId);
        let fp: string;
        try {
          fp = await storeNewKey({
            recordPrincipal,
            key: reply.apiKey,
            source: "register",
            name: input.name,
            operatorId: reply.operatorId,
            action: "register",
            point: (profile) => {
              profile.operator = recordPrincipal;
              delete profile.actsAs;
            },
          });
        } catch (error) {
          throw await rescueRegistered(reply, recordPrincipal, error);
        }
        killPoint("register.key-stored");
        return { operatorId: reply.operatorId, fingerprint: fp, recoveryCode: reply.recoveryCode };
      });
    },

    async login(apiKey, loginOptions = {}) {
      const key = apiKey.trim();
      if (!/^\S{8,512}$/.test(key)) {
        throw new RekeyError("INVALID_INPUT", "That does not look like an API key", {
          hint: "Paste the whole key (no spaces); faucet keys start with lf_.",
        });
      }
      const identity: Identity = await (await client())
        .whoami(key)
        .catch(async (error: unknown) => {
          throw isRekeyError(error, "UNAUTHORIZED") ? await staleKeyError(key, error) : error;
        });
      const principal = identity.type === "operator" ? OPERATOR : agent(identity.id);
      const recordPrincipal =
        identity.type === "operator" ? `operator:${identity.id}` : `agent:${identity.id}`;
      const operatorId = identity.type === "operator" ? identity.id : identity.operatorId;
      const faucet = (await readView()).faucet;
      const fp = fingerprint(key);
      // Under the principal's rotation lock: a rotation in flight elsewhere finishes first,
      // and the key is checked again after it, so a key that rotation killed is never stored.
      return withLock(rotationLockName(recordIdOf(faucet, recordPrincipal)), async () => {
        const view = await readView();
        const existing = view.data.principals[recordIdOf(faucet, recordPrincipal)];
        let action: AuditEventInput["action"] =
          loginOptions.source === "import" ? "import" : "login";
        // Checked again under the lock: a rotation that finished while we waited killed it.
        if (!(await keyIsAlive(key))) {
          throw await staleKeyError(
            key,
            new RekeyError(
              "UNAUTHORIZED",
              `The key ${fp} stopped working while it was being stored (a rotation elsewhere?)`,
              { hint: "Nothing was stored. Use the key that rotation issued." },
            ),
          );
        }
        const storedKey = existing?.key === undefined ? undefined : openKey(existing.key);
        if (existing !== undefined && storedKey !== undefined && storedKey !== key) {
          // Someone rotated elsewhere and this is the new key: adopt it only if the stored one
          // is dead, so a working key is never replaced.
          if (await keyIsAlive(storedKey)) {
            throw new RekeyError(
              "CONFIG_INVALID",
              `The store holds another working key for the ${principalLabel(principal)} (${recordPrincipal}): ${existing.fingerprint}; the key given (${fp}) was not stored`,
              {
                hint: "If you meant to replace the stored key, forget it first (`rekey forget`).",
                details: { principal: principalLabel(principal) },
              },
            );
          }
          action = "adopt";
        }
        let pointed = true;
        let repointedFrom: string | undefined;
        const stored = await storeNewKey({
          recordPrincipal,
          key,
          source: loginOptions.source ?? "login",
          name: identity.name,
          operatorId,
          action,
          point: (profile, draft) => {
            pointed = true;
            repointedFrom = undefined;
            const replace = loginOptions.replace === true;
            if (identity.type === "operator") {
              // A profile acting as an agent takes that agent's own operator only.
              const actingAgent =
                profile.operator === undefined && profile.actsAs?.startsWith("agent:")
                  ? draft.principals[recordIdOf(faucet, profile.actsAs)]
                  : undefined;
              const foreign = actingAgent !== undefined && actingAgent.operatorId !== identity.id;
              if (foreign && !replace) {
                pointed = false;
                return;
              }
              if (profile.operator === undefined || profile.operator === recordPrincipal) {
                profile.operator = recordPrincipal;
                // Acting as one of its agents stays so unless the caller switches back.
                if (replace) delete profile.actsAs;
                return;
              }
              if (replace) {
                repointedFrom = profile.operator;
                profile.operator = recordPrincipal;
                delete profile.actsAs;
                return;
              }
              pointed = false;
              return;
            }
            // An agent: act as it in an empty profile (or when asked); otherwise keep it as
            // one of the profile operator's agents, or beside them when it belongs to another.
            const ownOperator =
              operatorId === undefined ? undefined : operatorRecordPrincipal(operatorId);
            const empty = profile.operator === undefined && profile.actsAs === undefined;
            const belongs = profile.operator !== undefined && profile.operator === ownOperator;
            if (empty) {
              profile.actsAs = recordPrincipal;
              return;
            }
            // `--replace` asks to act as this agent, as `makeActive` does.
            if (loginOptions.makeActive === true || replace) {
              const free = profile.actsAs === undefined || profile.actsAs === recordPrincipal;
              if (replace || (belongs && free)) {
                if (profile.actsAs !== undefined && profile.actsAs !== recordPrincipal)
                  repointedFrom = profile.actsAs;
                profile.actsAs = recordPrincipal;
                if (!belongs) {
                  if (profile.operator !== undefined) repointedFrom ??= profile.operator;
                  delete profile.operator;
                }
                return;
              }
              pointed = false;
              return;
            }
            pointed = belongs || profile.actsAs === recordPrincipal;
          },
        });
        if (repointedFrom !== undefined) {
          await audit(context, {
            principal: recordPrincipal,
            action: "repoint",
            outcome: "success",
            newFingerprint: stored,
          });
        }
        if (
          !pointed &&
          (identity.type === "operator" ||
            loginOptions.makeActive === true ||
            loginOptions.replace === true)
        ) {
          const acting = (await readView()).actsAs ?? "nothing";
          throw new RekeyError(
            "CONFIG_INVALID",
            `The key (${stored}) is stored as the ${principalLabel(principal)} (${recordPrincipal}), but profile "${profileName}" still acts as ${acting}`,
            {
              hint: `Nothing was replaced. Switch the profile with \`rekey login --replace\` (the other record is kept), use another profile (--profile NAME), or act as it with --as ${recordPrincipal}.`,
              details: { principal: principalLabel(principal), storedAs: recordPrincipal },
            },
          );
        }
        return {
          principal,
          identity,
          fingerprint: stored,
          recordPrincipal,
          inProfile: pointed,
        };
      });
    },

    async createAgent(input) {
      const view = await readView();
      await ensureResolved(view);
      const operatorKey = (await currentKey(OPERATOR, view)).key;
      const operatorRecord = await recordPrincipalIn(view, OPERATOR);
      // The agent's key exists only in the faucet's reply: make sure it can be stored.
      await store.checkWritable();
      const reply = await (await client()).createAgent(operatorKey, input);
      const fp = await storeNewKey({
        recordPrincipal: `agent:${reply.agentId}`,
        key: reply.apiKey,
        source: "create",
        name: reply.name,
        operatorId: Number(operatorRecord.slice("operator:".length)) || undefined,
        action: "create_agent",
        point: (profile) => {
          profile.operator ??= operatorRecord;
        },
      });
      return { agentId: reply.agentId, name: reply.name, fingerprint: fp };
    },
  };
}
