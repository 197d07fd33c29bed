/** A minimal server-sent events reader for tests: what EventSource does, over fetch. */

export interface ReceivedEvent {
  id: string | undefined;
  type: string;
  data: Record<string, unknown>;
  /** performance.now() when it arrived. */
  at: number;
}

export interface SseReader {
  response: Response;
  /** Every byte received so far, as text. */
  text(): string;
  events: ReceivedEvent[];
  /** The first event (from `fromIndex`) matching `match`, waiting up to `timeoutMs`. */
  next(match: (event: ReceivedEvent) => boolean, timeoutMs?: number): Promise<ReceivedEvent>;
  close(): Promise<void>;
}

/** Reads `response`'s body as an event stream in the background. */
export function readEvents(response: Response): SseReader {
  const events: ReceivedEvent[] = [];
  const waiters = new Set<() => void>();
  let text = "";
  let buffer = "";
  const reader = response.body?.getReader();
  const decoder = new TextDecoder();
  const pump = async () => {
    if (reader === undefined) return;
    for (;;) {
      const { value, done } = await reader.read().catch(() => ({ value: undefined, done: true }));
      if (done) break;
      const chunk = decoder.decode(value, { stream: true });
      text += chunk;
      buffer += chunk;
      let end = buffer.indexOf("\n\n");
      while (end !== -1) {
        const block = buffer.slice(0, end);
        buffer = buffer.slice(end + 2);
        end = buffer.indexOf("\n\n");
        let id: string | undefined;
        let type = "message";
        let data = "";
        for (const line of block.split("\n")) {
          if (line.startsWith("id: ")) id = line.slice(4);
          else if (line.startsWith("event: ")) type = line.slice(7);
          else if (line.startsWith("data: ")) data += line.slice(6);
        }
        if (data === "") continue;
        events.push({ id, type, data: JSON.parse(data), at: performance.now() });
        for (const wake of [...waiters]) wake();
      }
    }
  };
  const pumping = pump();
  return {
    response,
    text: () => text,
    events,
    next(match, timeoutMs = 5000) {
      return new Promise((resolve, reject) => {
        const check = () => {
          const found = events.find(match);
          if (found === undefined) return false;
          clearTimeout(timer);
          waiters.delete(check);
          resolve(found);
          return true;
        };
        const timer = setTimeout(() => {
          waiters.delete(check);
          reject(new Error(`no matching event in ${timeoutMs} ms; got ${JSON.stringify(events)}`));
        }, timeoutMs);
        if (!check()) waiters.add(check);
      });
    },
    async close() {
      await reader?.cancel().catch(() => undefined);
      await pumping;
    },
  };
}
