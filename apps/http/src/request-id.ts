import { randomUUID } from "node:crypto";

const MAX_REQUEST_ID_LENGTH = 255;
// Word characters, "-" and "=": what Hono's request-id middleware accepts, so ids from proxies
// and tracing headers pass through while anything that could forge a log line does not.
const REQUEST_ID_PATTERN = /^[\w\-=]+$/;

/**
 * The id of a request: the caller's `X-Request-Id` when it is 1-255 word characters, `-` or
 * `=`, else a fresh UUID. It names the request in the log line, problem bodies and the
 * `X-Request-Id` response header. Throws nothing.
 */
export function requestIdFrom(header: string | undefined): string {
  return header !== undefined &&
    header.length <= MAX_REQUEST_ID_LENGTH &&
    REQUEST_ID_PATTERN.test(header)
    ? header
    : randomUUID();
}
