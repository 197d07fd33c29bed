import { RekeyError } from "@rekey/core";
import type { AuthenticatedToken } from "../tokens.js";
import type { EventHub, HubEvent } from "./event-hub.js";

/**
 * One `text/event-stream` response per client of `/v1/events` (or the console): the hub's
 * events that the token may see, after a replay from `Last-Event-ID` when one is given.
 *
 * Bounded: at most `maxStreams` open at once (`maxStreamsPerToken` per token), and a client
 * that does not read is cut off once `maxQueuedEvents` wait for it (it resumes with
 * `Last-Event-ID`), so a stuck reader costs a bounded amount of memory.
 */

export interface EventStreamLimits {
  /** Streams open at once in this process; default 100. */
  maxStreams: number;
  /** Streams open at once per token (or console session); default 20. */
  maxStreamsPerToken: number;
  /** Events queued for a slow reader before its stream is closed; default 1000. */
  maxQueuedEvents: number;
  /** Comment line sent when idle, so proxies keep the connection; default 15 s. */
  heartbeatMs: number;
  /** The reconnection delay the stream asks of EventSource; default 2 s. */
  retryMs: number;
}

export const DEFAULT_EVENT_STREAM_LIMITS: Readonly<EventStreamLimits> = Object.freeze({
  maxStreams: 100,
  maxStreamsPerToken: 20,
  maxQueuedEvents: 1000,
  heartbeatMs: 15_000,
  retryMs: 2_000,
});

/** Who reads a stream: a bearer token or a console session (same scopes and principals). */
export type StreamReader = Pick<AuthenticatedToken, "name" | "allows">;

/** The SSE text of one event. Data is one JSON line: it never holds a newline. */
export function formatEvent(event: HubEvent): string {
  const id = event.id === undefined ? "" : `id: ${event.id}\n`;
  return `${id}event: ${event.type}\ndata: ${JSON.stringify(event.data)}\n\n`;
}

export interface EventStreams {
  /**
   * The stream for `reader`, resuming after `lastEventId` when given.
   * @throws RekeyError RATE_LIMITED when the stream limits are reached.
   */
  open(reader: StreamReader, lastEventId: string | undefined): Promise<Response>;
  readonly openStreams: number;
}

export function createEventStreams(
  hub: EventHub,
  limits: Partial<EventStreamLimits> = {},
  /** This server's faucet (`faucetIdOf` of its base URL): events of another are not shown. */
  faucetOfServer?: () => Promise<string>,
): EventStreams {
  const { maxStreams, maxStreamsPerToken, maxQueuedEvents, heartbeatMs, retryMs } = {
    ...DEFAULT_EVENT_STREAM_LIMITS,
    ...limits,
  };
  let open = 0;
  const perReader = new Map<string, number>();
  const encoder = new TextEncoder();

  return {
    get openStreams() {
      return open;
    },
    async open(reader, lastEventId) {
      const mine = perReader.get(reader.name) ?? 0;
      if (open >= maxStreams || mine >= maxStreamsPerToken) {
        throw new RekeyError(
          "RATE_LIMITED",
          open >= maxStreams
            ? `This server already serves ${maxStreams} event streams.`
            : `This token already has ${maxStreamsPerToken} event streams open.`,
          {
            hint: "Close another stream, or retry later.",
            details: { retryAfterSeconds: Math.ceil(retryMs / 1000) },
          },
        );
      }
      open += 1;
      perReader.set(reader.name, mine + 1);
      let released = false;
      const release = () => {
        if (released) return;
        released = true;
        open -= 1;
        const left = (perReader.get(reader.name) ?? 1) - 1;
        if (left === 0) perReader.delete(reader.name);
        else perReader.set(reader.name, left);
      };

      const faucet = await faucetOfServer?.();
      const visible = (event: HubEvent) =>
        (event.faucet === undefined || faucet === undefined || event.faucet === faucet) &&
        (event.principal === undefined || reader.allows(event.principal));
      // Live events that arrive while the replay is read wait here, so none is lost or repeated.
      let pending: HubEvent[] | undefined = [];
      let lastSeq = 0;
      let controller: ReadableStreamDefaultController<Uint8Array> | undefined;
      let unsubscribe = () => {};
      let heartbeat: NodeJS.Timeout | undefined;
      let closed = false;

      const finish = () => {
        if (closed) return;
        closed = true;
        clearInterval(heartbeat);
        unsubscribe();
        release();
      };
      const write = (text: string) => {
        if (closed || controller === undefined) return;
        if ((controller.desiredSize ?? 0) < -maxQueuedEvents) {
          // The client stopped reading: drop it rather than queue without end.
          finish();
          controller.close();
          return;
        }
        controller.enqueue(encoder.encode(text));
      };
      const deliver = (event: HubEvent) => {
        if (event.seq !== undefined) {
          if (event.seq <= lastSeq) return;
          lastSeq = event.seq;
        }
        if (visible(event)) write(formatEvent(event));
      };

      unsubscribe = hub.subscribe({
        event(event) {
          if (pending === undefined) deliver(event);
          else pending.push(event);
        },
        end() {
          finish();
          controller?.close();
        },
      });

      let replayed: HubEvent[] = [];
      try {
        await hub.ready();
        if (lastEventId !== undefined && lastEventId !== "") {
          const replay = await hub.replay(lastEventId);
          replayed = replay.kind === "events" ? replay.events : [replay.event];
        }
      } catch (error) {
        finish();
        throw error;
      }

      const stream = new ReadableStream<Uint8Array>(
        {
          start(streamController) {
            controller = streamController;
            write(`retry: ${retryMs}\n: rekey events\n\n`);
            for (const event of replayed) deliver(event);
            const waiting = pending ?? [];
            pending = undefined;
            for (const event of waiting) deliver(event);
            heartbeat = setInterval(() => write(": keep-alive\n\n"), heartbeatMs);
            heartbeat.unref();
          },
          cancel() {
            finish();
          },
        },
        // Counted in events (chunks), so maxQueuedEvents bounds what a stuck reader holds.
        { highWaterMark: 1 },
      );
      return new Response(stream, {
        status: 200,
        headers: {
          "content-type": "text/event-stream; charset=utf-8",
          "cache-control": "no-store",
          // Proxies (nginx) would otherwise hold events back in their buffers.
          "x-accel-buffering": "no",
        },
      });
    },
  };
}
