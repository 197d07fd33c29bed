import type { Transport } from "@modelcontextprotocol/sdk/shared/transport.js";

/**
 * `inner` as a transport that also counts the requests it delivers and the replies sent to
 * them, and `whenAnswered(listener)`: calls `listener` (on a later turn) once nothing delivered
 * is left unanswered. The SDK's stdio transport does not track that; a session whose host
 * writes its requests and closes stdin (a shell pipe) must be answered before it ends.
 */
export function countingAnswers(inner: Transport): {
  transport: Transport;
  whenAnswered(listener: () => void): void;
} {
  const unanswered = new Set<unknown>();
  let waiting: (() => void) | undefined;
  const settle = () => {
    if (unanswered.size > 0 || waiting === undefined) return;
    const listener = waiting;
    waiting = undefined;
    setImmediate(listener);
  };
  const outer: Transport = {
    start: () => inner.start(),
    close: () => inner.close(),
    async send(message, options) {
      await inner.send(message, options);
      if ("id" in message && !("method" in message)) {
        unanswered.delete(message.id);
        settle();
      }
    },
  };
  inner.onmessage = (message, extra) => {
    if ("method" in message && "id" in message) unanswered.add(message.id);
    outer.onmessage?.(message, extra);
  };
  inner.onerror = (error) => outer.onerror?.(error);
  inner.onclose = () => outer.onclose?.();
  return {
    transport: outer,
    whenAnswered(listener) {
      waiting = listener;
      settle();
    },
  };
}
