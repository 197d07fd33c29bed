import { isRekeyError, RekeyError } from "../errors.js";
import { principalLabel } from "../principal.js";
import { faucetIdOf, RECORD_PRINCIPAL_PATTERN, recordIdOf } from "../store/record-ids.js";
import { rotationLockName } from "./context.js";
import {
  principalOfRecord,
  recordsOfView,
  setKey,
  updateStore,
  writableRecord,
} from "./principal-records.js";
import { audit } from "./rotation-steps.js";
import type { Session } from "./session.js";
import type { KeyCheck, Rekey } from "./types.js";

/** The keys the store holds: checked against the faucet, settled, forgotten. */
export function createHeldKeys(
  session: Session,
): Pick<Rekey, "checkKeys" | "settleAlternates" | "forget"> {
  const { store, readView, context, keyProvider, withLock, keyIsAlive } = session;
  return {
    async checkKeys() {
      const view = await readView();
      const checks: KeyCheck[] = [];
      for (const record of recordsOfView(view)) {
        // Keys are opened when read: one that does not decrypt (STORE_CORRUPT: changed, or moved
        // from another record) is this candidate's error, not the end of every check (doctor).
        const candidates = [
          ...(!("key" in record)
            ? []
            : [
                { fingerprint: record.fingerprint as string, key: () => record.key, current: true },
              ]),
          ...(record.alternates ?? []).map((alternate) => ({
            fingerprint: alternate.fingerprint,
            key: () => alternate.key,
            current: false,
          })),
        ];
        for (const candidate of candidates) {
          let alive: boolean | undefined;
          let error: string | undefined;
          try {
            const key = candidate.key();
            if (key === undefined) continue;
            alive = await keyIsAlive(key);
          } catch (cause) {
            error = toMessage(cause);
          }
          checks.push({
            principal: record.principal,
            label: principalLabel(principalOfRecord(record.principal)),
            fingerprint: candidate.fingerprint,
            current: candidate.current,
            ...(alive === undefined ? {} : { alive }),
            ...(error === undefined ? {} : { error }),
          });
        }
      }
      return checks;
    },

    async settleAlternates() {
      const view = await readView();
      const settled: KeyCheck[] = [];
      for (const record of recordsOfView(view)) {
        if (!record.alternates?.length) continue;
        const id = recordIdOf(view.faucet, record.principal);
        await withLock(rotationLockName(id), async () => {
          const fresh = (await store.read()).data.principals[id];
          if (!fresh?.alternates?.length) return;
          const currentAlive = fresh.key === undefined ? false : await keyIsAlive(fresh.key);
          const alive: (typeof fresh.alternates)[number][] = [];
          for (const alternate of fresh.alternates) {
            if (await keyIsAlive(alternate.key)) alive.push(alternate);
          }
          const adopt = currentAlive ? undefined : alive[0];
          await updateStore(
            store,
            (draft) => {
              const target = writableRecord(draft, fresh.faucet, fresh.principal);
              if (!target) return;
              if (adopt) setKey(target, adopt);
              delete target.alternates;
            },
            () => keyProvider.invalidate(),
          );
          for (const alternate of fresh.alternates) {
            const adopted = alternate === adopt;
            await audit(context, {
              principal: fresh.principal,
              action: adopted ? "adopt" : "forget",
              outcome: "success",
              ...(adopted
                ? { oldFingerprint: fresh.fingerprint, newFingerprint: alternate.fingerprint }
                : { oldFingerprint: alternate.fingerprint }),
            });
            settled.push({
              principal: fresh.principal,
              label: principalLabel(principalOfRecord(fresh.principal)),
              fingerprint: alternate.fingerprint,
              current: adopted,
              alive: alive.includes(alternate),
            });
          }
        });
      }
      return settled;
    },

    async forget(recordPrincipal, forgetOptions = {}) {
      if (!RECORD_PRINCIPAL_PATTERN.test(recordPrincipal)) {
        throw new RekeyError(
          "INVALID_INPUT",
          `Invalid principal ${JSON.stringify(recordPrincipal.slice(0, 40))}`,
          {
            hint: "Use agent:ID or operator:ID, as `rekey profiles show` lists them.",
          },
        );
      }
      const faucet = (await readView()).faucet;
      const id = recordIdOf(faucet, recordPrincipal);
      return withLock(rotationLockName(id), async () => {
        const data = (await store.read()).data;
        const record = data.principals[id];
        if (!record) {
          throw new RekeyError("NOT_FOUND", `No record of ${recordPrincipal} on ${faucet}`);
        }
        if (record.intent) {
          throw new RekeyError(
            "ROTATION_IN_PROGRESS",
            `${recordPrincipal} has an unfinished rotation: it cannot be forgotten now`,
            { hint: "Resolve it first (`rekey doctor --repair`)." },
          );
        }
        const users = Object.entries(data.profiles)
          .filter(
            ([, profile]) =>
              faucetIdOf(profile.baseUrl) === faucet &&
              (profile.operator === recordPrincipal || profile.actsAs === recordPrincipal),
          )
          .map(([name]) => name);
        if (users.length > 0) {
          throw new RekeyError(
            "CONFIG_INVALID",
            `${recordPrincipal} is used by profile${users.length > 1 ? "s" : ""} ${users.map((name) => `"${name}"`).join(", ")}`,
            { hint: "Remove or repoint those profiles first (`rekey profiles remove NAME`)." },
          );
        }
        // Confirmed, a faucet that cannot be asked (down, or a mistyped URL) does not stop it.
        const alive =
          record.key === undefined
            ? false
            : await keyIsAlive(record.key).catch((error: unknown) => {
                if (forgetOptions.confirmLive === true) return true;
                throw error;
              });
        if (alive && forgetOptions.confirmLive !== true) {
          throw new RekeyError(
            "CONFIG_INVALID",
            `The faucet still accepts the key of ${recordPrincipal} (${record.fingerprint}): forgetting it leaves rekey without it`,
            {
              hint: "Confirm (--yes) only if you hold this key elsewhere.",
              details: { needsConfirmation: true },
            },
          );
        }
        await updateStore(
          store,
          (draft) => {
            delete draft.principals[id];
          },
          () => keyProvider.invalidate(),
        );
        await audit(context, {
          principal: recordPrincipal,
          action: "forget",
          outcome: "success",
          ...(record.fingerprint === undefined ? {} : { oldFingerprint: record.fingerprint }),
        });
        return { principal: recordPrincipal, fingerprint: record.fingerprint, wasAlive: alive };
      });
    },
  };
}

function toMessage(error: unknown): string {
  return isRekeyError(error) ? `${error.code}: ${error.message}` : "unexpected error";
}
