import {
  type AuditEntry,
  agent,
  auditEntryView,
  type Clock,
  type CredentialStore,
  faucetIdOf,
  OPERATOR,
  type Principal,
  recordPrincipalView,
} from "@rekey/core";

/**
 * The one source of `/v1/events` (and the console's live updates): a single watch on the store
 * for every open stream, however many there are.
 *
 * - Audit-log entries become events with an id (`<seq>-<first 16 hex of the entry's hash>`), so
 *   a client resumes with `Last-Event-ID` from the log itself: rotations ("rotation"), delivery
 *   outcomes ("delivery") and every other audited action ("audit"), by this process or any
 *   other process or replica sharing the store.
 * - Cooldown ends become "cooldown.ended" events, from the records' `cooldownUntil`.
 * - Other modules (a scheduler, say) `publish` their own live events.
 *
 * The store's watch reports writes to the store document; a rotation appends its audit entry a
 * moment after its last write, so a change is followed by two more looks at the log, and a slow
 * poll catches audit entries written with no store change at all.
 */

/** One event as streams send it. */
export interface HubEvent {
  /** The SSE event name. */
  type: string;
  /** Resume point (audit-log events only). */
  id?: string;
  /** The audit entry's seq, for audit-log events. */
  seq?: number;
  /** Whom it concerns; a token with a principals list sees only its own. Absent: everyone. */
  principal?: Principal;
  /**
   * The faucet it happened on (`faucetIdOf`), when known: a server shows only its own faucet's
   * events, since principal ids repeat across faucets.
   */
  faucet?: string;
  data: Record<string, unknown>;
}

/** A stream's end of the hub. */
export interface HubSubscriber {
  event(event: HubEvent): void;
  /** The hub is closing (server shutdown): end the stream. */
  end(): void;
}

/** What a `Last-Event-ID` resumes: the entries after it, or a resync from the log's end. */
export type Replay = { kind: "events"; events: HubEvent[] } | { kind: "resync"; event: HubEvent };

export interface EventHub {
  subscribe(subscriber: HubSubscriber): () => void;
  /**
   * Resolves once the hub knows where the audit log ends (read when the first stream
   * subscribes): every entry appended after that reaches the streams. A stream awaits it
   * before it answers, so nothing a client does after connecting can fall before that point.
   */
  ready(): Promise<void>;
  /** Sends a live event (no id: it is not in the audit log) to every stream allowed to see it. */
  publish(event: Omit<HubEvent, "id" | "seq">): void;
  /** The events after `lastEventId`. */
  replay(lastEventId: string): Promise<Replay>;
  readonly subscribers: number;
  /** Ends every stream and stops watching. */
  close(): void;
}

export interface EventHubOptions {
  store: CredentialStore;
  clock: Clock;
  /** Most entries a resume replays; further back gets a "resync". Default 1000. */
  maxReplay?: number;
  /** The slow poll of the audit log while streams are open. Default 5 s. */
  pollMs?: number;
  /** Called with an error the hub could not act on (an unreadable store); default ignores it. */
  onError?: (error: unknown) => void;
}

/** Looks after a store change, for the audit entry that follows a rotation's last write. */
const FOLLOW_UPS_MS = [150, 1000];
const DEFAULT_MAX_REPLAY = 1000;
const DEFAULT_POLL_MS = 5000;
/** setTimeout's largest delay; a later cooldown end is re-armed when it comes nearer. */
const MAX_TIMER_MS = 2 ** 31 - 1;

/** `<seq>-<16 hex>` of an audit entry. */
export function eventIdOf(entry: Pick<AuditEntry, "seq" | "hash">): string {
  return `${entry.seq}-${entry.hash.slice(0, 16)}`;
}

function parseEventId(id: string): { seq: number; hashPrefix: string } | undefined {
  const match = /^(\d{1,15})-([0-9a-f]{16})$/.exec(id.trim());
  if (match === null) return undefined;
  return { seq: Number(match[1]), hashPrefix: match[2] ?? "" };
}

/** The principal an audit entry or record names: "agent:7", "operator:12", "operator". */
export function principalOfEntry(name: string): Principal {
  const match = /^agent:(\d+)$/.exec(name);
  return match === null ? OPERATOR : agent(Number(match[1]));
}

/** The event name of an audited action. */
export function eventTypeOf(action: string): string {
  if (action === "rotate" || action === "recover") return "rotation";
  if (action.startsWith("deliver")) return "delivery";
  return "audit";
}

/**
 * An audit entry as an event: its data is the entry in core's vocabulary (`auditEntryView`),
 * the shape `rekey history --json` prints.
 */
export function auditEvent(entry: AuditEntry, faucet?: string): HubEvent {
  const data = auditEntryView(entry);
  return {
    type: eventTypeOf(entry.action),
    id: eventIdOf(entry),
    seq: entry.seq,
    principal: principalOfEntry(entry.principal),
    ...(faucet === undefined ? {} : { faucet }),
    data,
  };
}

/** The faucet of each profile, which is how an audit entry (it names its profile) is placed. */
async function faucetsOfProfiles(store: CredentialStore): Promise<Map<string, string>> {
  const { data } = await store.read();
  return new Map(
    Object.entries(data.profiles).map(([name, profile]) => [name, faucetIdOf(profile.baseUrl)]),
  );
}

export function createEventHub(options: EventHubOptions): EventHub {
  const { store, clock } = options;
  const maxReplay = options.maxReplay ?? DEFAULT_MAX_REPLAY;
  const onError = options.onError ?? (() => {});
  const subscribers = new Set<HubSubscriber>();
  /** The last audit entry seen; undefined until the first look (or for an empty log, seq 0). */
  let last: { seq: number; hash: string } | undefined;
  let unwatch: (() => void) | undefined;
  let poll: NodeJS.Timeout | undefined;
  const followUps = new Set<NodeJS.Timeout>();
  /** Cooldown-end timers by record id and end. */
  const cooldownTimers = new Map<string, NodeJS.Timeout>();
  // Looks run one after another, so that an entry is sent once and in order.
  let looking: Promise<void> = Promise.resolve();
  /** The first look after `start`, which reads where the log ends. */
  let baseline: Promise<void> = Promise.resolve();

  const send = (event: HubEvent) => {
    for (const subscriber of [...subscribers]) subscriber.event(event);
  };

  const readLog = async (): Promise<AuditEntry[]> => store.readAudit();

  const lookAtLog = async () => {
    const entries = await readLog();
    const end = entries.at(-1);
    if (last === undefined) {
      last = end === undefined ? { seq: 0, hash: "" } : { seq: end.seq, hash: end.hash };
      return;
    }
    const seen = last;
    const anchor = seen.seq === 0 ? undefined : entries[seen.seq - 1];
    if (seen.seq > 0 && (anchor === undefined || anchor.hash !== seen.hash)) {
      // Another log than the one this hub followed (the store was replaced): start over at its end.
      last = end === undefined ? { seq: 0, hash: "" } : { seq: end.seq, hash: end.hash };
      send(resyncEvent(end, "the audit log changed under the stream"));
      return;
    }
    const fresh = entries.slice(seen.seq);
    const faucets = fresh.length === 0 ? undefined : await faucetsOfProfiles(store);
    for (const entry of fresh) {
      last = { seq: entry.seq, hash: entry.hash };
      send(auditEvent(entry, faucets?.get(entry.profile)));
    }
  };

  const armCooldowns = async () => {
    const snapshot = await store.read();
    const now = clock.now();
    const wanted = new Set<string>();
    for (const [recordId, record] of Object.entries(snapshot.data.principals)) {
      if (record.cooldownUntil === undefined) continue;
      const endsAt = Date.parse(record.cooldownUntil);
      if (!(endsAt > now)) continue;
      const key = `${recordId}@${record.cooldownUntil}`;
      wanted.add(key);
      if (cooldownTimers.has(key)) continue;
      const capped = endsAt - now > MAX_TIMER_MS;
      const timer = setTimeout(
        () => {
          cooldownTimers.delete(key);
          if (capped) {
            void armCooldowns().catch(onError);
            return;
          }
          send({
            type: "cooldown.ended",
            principal: principalOfEntry(record.principal),
            faucet: record.faucet,
            data: {
              ...recordPrincipalView(record.principal),
              ...(record.name === undefined ? {} : { name: record.name }),
              ...(record.fingerprint === undefined ? {} : { fingerprint: record.fingerprint }),
              cooldown_until: record.cooldownUntil,
            },
          });
        },
        Math.min(endsAt - now, MAX_TIMER_MS),
      );
      timer.unref();
      cooldownTimers.set(key, timer);
    }
    // A cooldown replaced (a forced rotation) or cleared: its old end is no event.
    for (const [key, timer] of cooldownTimers) {
      if (!wanted.has(key)) {
        clearTimeout(timer);
        cooldownTimers.delete(key);
      }
    }
  };

  const look = (withCooldowns: boolean) => {
    looking = looking
      .then(async () => {
        if (subscribers.size === 0) return;
        await lookAtLog();
        if (withCooldowns) await armCooldowns();
      })
      .catch(onError);
    return looking;
  };

  const onStoreChange = () => {
    void look(true);
    for (const delay of FOLLOW_UPS_MS) {
      const timer = setTimeout(() => {
        followUps.delete(timer);
        void look(false);
      }, delay);
      timer.unref();
      followUps.add(timer);
    }
  };

  const start = () => {
    last = undefined;
    unwatch = store.watch(onStoreChange);
    poll = setInterval(() => void look(false), options.pollMs ?? DEFAULT_POLL_MS);
    poll.unref();
    baseline = look(true);
  };

  const stop = () => {
    unwatch?.();
    unwatch = undefined;
    clearInterval(poll);
    poll = undefined;
    for (const timer of [...followUps, ...cooldownTimers.values()]) clearTimeout(timer);
    followUps.clear();
    cooldownTimers.clear();
  };

  return {
    subscribe(subscriber) {
      subscribers.add(subscriber);
      if (subscribers.size === 1) start();
      return () => {
        if (subscribers.delete(subscriber) && subscribers.size === 0) stop();
      };
    },
    ready() {
      return baseline;
    },
    publish(event) {
      send(event);
    },
    async replay(lastEventId) {
      const entries = await readLog();
      const end = entries.at(-1);
      const from = parseEventId(lastEventId);
      const anchor = from === undefined || from.seq === 0 ? undefined : entries[from.seq - 1];
      if (from === undefined || anchor === undefined || !anchor.hash.startsWith(from.hashPrefix)) {
        return {
          kind: "resync",
          event: resyncEvent(end, "the Last-Event-ID is not in this store's audit log"),
        };
      }
      const after = entries.slice(from.seq);
      if (after.length > maxReplay) {
        return {
          kind: "resync",
          event: resyncEvent(end, `more than ${maxReplay} events were missed`),
        };
      }
      const faucets = await faucetsOfProfiles(store);
      return {
        kind: "events",
        events: after.map((entry) => auditEvent(entry, faucets.get(entry.profile))),
      };
    },
    get subscribers() {
      return subscribers.size;
    },
    close() {
      for (const subscriber of [...subscribers]) subscriber.end();
      subscribers.clear();
      stop();
    },
  };
}

/**
 * Tells a client that events were missed and it should re-read the state (`/v1/status`); its id
 * is the log's end, so a reconnect after it resumes from there.
 */
function resyncEvent(end: AuditEntry | undefined, reason: string): HubEvent {
  return {
    type: "resync",
    ...(end === undefined ? {} : { id: eventIdOf(end), seq: end.seq }),
    data: { reason },
  };
}
