import { createHash, randomUUID } from "node:crypto";
import { RekeyError } from "../errors.js";
import { idempotencySlot, recordIdOf, scopePrefix } from "../store/record-ids.js";
import type { StoreSnapshot } from "../store/types.js";
import { updateStore, updateStoreFrom } from "./principal-records.js";
import { outcomeUnknown } from "./rotation-steps.js";
import type { Session } from "./session.js";
import { createSingleFlight } from "./single-flight.js";
import type { Rekey } from "./types.js";

/** How long a remembered reply is kept. */
const IDEMPOTENCY_TTL_MS = 24 * 60 * 60 * 1000;

/**
 * `withIdempotency`: one request under one key runs once; its outcome is remembered 24 hours.
 * It remembers a JSON result, not a reply: a front end maps outcomes to its own status codes.
 */
export function createIdempotency(session: Session): Pick<Rekey, "withIdempotency"> {
  const { profileName, store, clock, idempotentBases, readView, context } = session;
  const idempotencyFlights = createSingleFlight<{ result: unknown; replayed: boolean }>();
  return {
    async withIdempotency(idempotencyKey, requestHash, run, options = {}) {
      if (!/^[\x21-\x7e]{1,255}$/.test(idempotencyKey)) {
        throw new RekeyError(
          "INVALID_INPUT",
          "The idempotency key must be 1 to 255 visible ASCII characters",
        );
      }
      const requestDigest = createHash("sha256").update(requestHash).digest("hex");
      // Same key, same request, while it runs in this process: one lock, one answer. The key is
      // known before any await, so concurrent callers find each other (this Rekey is bound to
      // one profile and principal, which scope the slot). Another request under the same key
      // queues on the lock, then is refused by the replay.
      const flightKey = createHash("sha256")
        .update(`${options.scope ?? ""}\n${idempotencyKey}\n${requestDigest}`)
        .digest("hex");
      const running = idempotencyFlights.running(flightKey);
      if (running) return { ...(await running), replayed: true } as never;
      const work = idempotencyFlights.run(flightKey, async () => {
        const view = await readView();
        // The principal acting owns the slot; a caller's scope (a bearer token's name) gets
        // slots of its own within it, so another caller's key never lands in them.
        const principalScope =
          view.actsAs === undefined
            ? `profile:${profileName}`
            : recordIdOf(view.faucet, view.actsAs);
        const scope =
          options.scope === undefined ? principalScope : `${principalScope}\n${options.scope}`;
        const slot = idempotencySlot(scope, idempotencyKey);
        const replay = (snapshot: StoreSnapshot) => {
          const record = snapshot.data.idempotency[slot];
          if (!record || Date.parse(record.expiresAt) <= clock.now()) return undefined;
          if (record.requestHash !== requestDigest) {
            throw new RekeyError(
              "IDEMPOTENCY_KEY_REUSED",
              "This idempotency key was already used with a different request",
              {
                hint: "Use a new idempotency key for a different request.",
              },
            );
          }
          // Pending: a run that never finished (a crash); it runs again with its request_id.
          if (record.state === "pending") return undefined;
          return { result: record.result, replayed: true };
        };
        // The view's snapshot answers a replay without taking the lock.
        const first = replay(view.snapshot);
        if (first) return first;
        const lock = await store.lock(`idempotency.${slot}`, {
          leaseMs: context.lockLeaseMs,
          waitMs: context.lockWaitMs,
        });
        try {
          const locked = await store.read();
          const again = replay(locked);
          if (again) return again;
          // Recorded as pending before anything runs: a retry after a crash finds the
          // request_id and asks for that rotation again, which returns it once journaled.
          const pending = locked.data.idempotency[slot];
          const requestId =
            pending?.requestHash === requestDigest && pending.state === "pending"
              ? pending.requestId
              : randomUUID();
          let base = locked;
          if (pending?.state !== "pending" || pending.requestId !== requestId) {
            const startedAt = clock.now();
            ({ snapshot: base } = await updateStoreFrom(store, locked, (draft) => {
              draft.idempotency[slot] = {
                requestHash: requestDigest,
                createdAt: new Date(startedAt).toISOString(),
                expiresAt: new Date(startedAt + IDEMPOTENCY_TTL_MS).toISOString(),
                state: "pending",
                requestId,
              };
            }));
          }
          let result: unknown;
          // The run's rotation starts from the snapshot just read and written under this lock,
          // as its caller saw the store, instead of reading it again.
          idempotentBases.set(requestId, base);
          try {
            result = await run({ requestId });
          } catch (error) {
            // A definite failure frees the key for a retry; the pending record stays while
            // the outcome is unknown, so the retry asks for the same rotation.
            if (outcomeUnknown(error)) throw error;
            await updateStore(store, (draft) => {
              const record = draft.idempotency[slot];
              if (record?.state === "pending" && record.requestId === requestId)
                delete draft.idempotency[slot];
            }).catch(() => {});
            throw error;
          } finally {
            idempotentBases.delete(requestId);
          }
          const now = clock.now();
          await updateStore(store, (draft) => {
            for (const [key, record] of Object.entries(draft.idempotency)) {
              if (Date.parse(record.expiresAt) <= now) delete draft.idempotency[key];
            }
            if (options.scope !== undefined && options.maxRecords !== undefined) {
              // The scope's oldest records make room: a caller can only crowd out itself.
              const prefix = scopePrefix(scope);
              const own = Object.entries(draft.idempotency)
                .filter(([key]) => key.startsWith(prefix) && key !== slot)
                .sort(([, a], [, b]) => a.createdAt.localeCompare(b.createdAt));
              for (const [key] of own.slice(0, Math.max(0, own.length - options.maxRecords + 1))) {
                delete draft.idempotency[key];
              }
            }
            draft.idempotency[slot] = {
              requestHash: requestDigest,
              createdAt: new Date(now).toISOString(),
              expiresAt: new Date(now + IDEMPOTENCY_TTL_MS).toISOString(),
              state: "done",
              result,
            };
          });
          return { result, replayed: false };
        } finally {
          await lock.release();
        }
      });
      return (await work) as never;
    },
  };
}
