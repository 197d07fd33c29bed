import { RekeyError } from "@rekey/core";
import type { MiddlewareHandler } from "hono";
import { bodyLimit } from "hono/body-limit";
import type { AppEnv } from "../http-env.js";
import type { ProblemRenderer } from "./problems.js";

/**
 * The 413 for a body over `maxBytes`. Only on routes with a body: touching the body on GETs
 * would make @hono/node-server build a full Request object for every status call.
 */
export function createBodyLimit(
  maxBytes: number,
  problem: ProblemRenderer,
): MiddlewareHandler<AppEnv> {
  return bodyLimit({
    maxSize: maxBytes,
    onError: (c) => {
      c.set("errorCode", "INVALID_INPUT");
      return problem(
        new RekeyError("INVALID_INPUT", `The request body exceeds ${maxBytes} bytes.`),
        c,
        { status: 413, title: "Request body too large" },
      );
    },
  });
}
