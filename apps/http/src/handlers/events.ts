import type { OpenAPIHono } from "@hono/zod-openapi";
import { RekeyError } from "@rekey/core";
import type { createEventStreams } from "../events/event-stream.js";
import { type AppEnv, requestHeader } from "../http-env.js";
import type { Auth } from "../middleware/auth.js";
import { eventsRoute } from "../routes.js";
import type { AuthenticatedToken } from "../tokens.js";

/** `GET /v1/events`: a 404 when the server has no event source. */
export function registerEventsRoute(
  app: OpenAPIHono<AppEnv>,
  parts: { auth: Auth; eventStreams: ReturnType<typeof createEventStreams> | undefined },
): void {
  const { auth, eventStreams } = parts;
  app.openAPIRegistry.registerPath(eventsRoute);
  app.get(eventsRoute.path, async (c) => {
    const denied = auth.scopeProblem(c, "status");
    if (denied !== undefined) return denied;
    if (eventStreams === undefined) {
      throw new RekeyError("NOT_FOUND", "This server has no event source.");
    }
    // The scope check guarantees a token here.
    const token = c.get("token") as AuthenticatedToken;
    const response = await eventStreams.open(token, requestHeader(c, "last-event-id"));
    response.headers.set("x-request-id", c.get("requestId"));
    return response;
  });
}
