import type { Clock } from "@rekey/core";
import type { RequestIdContext } from "../http-env.js";
import { type ProblemOverrides, problemResponse } from "../problem.js";

/** Renders an error as the request's problem response (its request id, the app's clock). */
export type ProblemRenderer = (
  thrown: unknown,
  c: RequestIdContext,
  overrides?: ProblemOverrides,
) => Response;

/** The app's {@link ProblemRenderer}. Throws nothing. */
export function createProblemRenderer(clock: Clock): ProblemRenderer {
  return (thrown, c, overrides = {}) =>
    problemResponse(thrown, clock.now(), { requestId: c.get("requestId"), ...overrides });
}
