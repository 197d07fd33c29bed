import { RekeyError, redactKeys, toRekeyError } from "@rekey/core";
import type { Context, ErrorHandler, NotFoundHandler } from "hono";
import { HTTPException } from "hono/http-exception";
import type { Logger } from "pino";
import type { AppEnv } from "../http-env.js";
import { ROUTE_METHODS } from "../routes.js";
import type { ProblemRenderer } from "./problems.js";

/**
 * The app's `onError`: every failure as an `application/problem+json` response mapped from
 * core's error code; an unexpected one (INTERNAL) also logged, with keys redacted.
 */
export function createErrorHandler(logger: Logger, problem: ProblemRenderer): ErrorHandler<AppEnv> {
  return (thrown, c) => {
    // A refusal already rendered (see `refuse` in auth.ts).
    if (thrown instanceof HTTPException && thrown.res !== undefined) return thrown.getResponse();
    if (thrown instanceof HTTPException) {
      // Transport-level refusals from Hono (malformed JSON, wrong media type): the caller's input.
      const status = thrown.status;
      const code = status >= 500 ? "INTERNAL" : "INVALID_INPUT";
      c.set("errorCode", code);
      const title =
        status === 415 ? "Unsupported media type: send application/json" : "Invalid request";
      return problem(new RekeyError(code, thrown.message || title), c, { status, title });
    }
    const error = toRekeyError(thrown);
    c.set("errorCode", error.code);
    if (error.code === "INTERNAL") {
      const cause = error.cause instanceof Error ? error.cause : error;
      logger.error(
        {
          request_id: c.get("requestId"),
          err: { message: redactKeys(cause.message), stack: redactKeys(cause.stack ?? "") },
        },
        "unexpected error",
      );
    }
    return problem(error, c);
  };
}

/** The app's `notFound`: a 405 naming the allowed methods for a known path, else a 404. */
export function createNotFoundHandler(problem: ProblemRenderer): NotFoundHandler<AppEnv> {
  return (c: Context<AppEnv>) => {
    const allowed = ROUTE_METHODS.get(c.req.path);
    if (allowed !== undefined) {
      c.set("errorCode", "INVALID_INPUT");
      return problem(
        new RekeyError("INVALID_INPUT", `${c.req.path} does not take ${c.req.method}`, {
          hint: `Use ${allowed.join(" or ")}.`,
        }),
        c,
        { status: 405, title: "Method not allowed", headers: { allow: allowed.join(", ") } },
      );
    }
    c.set("errorCode", "NOT_FOUND");
    return problem(new RekeyError("NOT_FOUND", `No route for ${c.req.method} ${c.req.path}`), c);
  };
}
