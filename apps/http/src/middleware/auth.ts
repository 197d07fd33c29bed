import {
  agent,
  OPERATOR,
  type Principal,
  principalLabel,
  type Rekey,
  RekeyError,
} from "@rekey/core";
import type { Context, MiddlewareHandler } from "hono";
import { createMiddleware } from "hono/factory";
import { HTTPException } from "hono/http-exception";
import { type AppEnv, requestHeader } from "../http-env.js";
import type { AuthenticatedToken, Scope } from "../tokens.js";
import type { ProblemRenderer } from "./problems.js";

const BEARER_REALM = 'Bearer realm="rekey"';

/** The bearer token, scope and principal checks of the routes under /v1. */
export interface Auth {
  /** The request's token, or the 401 for a request without a known bearer token. */
  authenticate(c: Context<AppEnv>): Response | AuthenticatedToken;
  /** The 403 for a token without `scope`, or undefined when the token has it. */
  scopeProblem(c: Context<AppEnv>, scope: Scope): Response | undefined;
  /**
   * The 403 for a token whose `principals` list leaves out the principal a request acts on (the
   * profile's active principal when the request names none), or undefined. Checked before core
   * is called, so a refused request changes nothing and calls nothing upstream.
   */
  principalProblem(
    c: Context<AppEnv>,
    agentId: string | number | undefined,
  ): Promise<Response | undefined>;
  /** The 403 for a token whose `principals` list leaves out `target`, or undefined. */
  principalDenied(c: Context<AppEnv>, target: Principal): Response | undefined;
  /** Route middleware: the 403 unless the token has `scope`. */
  requireScope(scope: Scope): MiddlewareHandler<AppEnv>;
}

/**
 * Ends a typed route handler with a problem response already built (a 403 from a scope or
 * principal check): the app's `onError` sends it as it is.
 */
export function refuse(response: Response): never {
  throw new HTTPException(response.status as 403, { res: response });
}

/** The checks, over the token verifier from tokens.ts. Throws nothing. */
export function createAuth(options: {
  verifyToken: (authorization: string | undefined) => AuthenticatedToken | undefined;
  rekey: Rekey;
  problem: ProblemRenderer;
}): Auth {
  const { verifyToken, rekey, problem } = options;

  const principalDenied = (c: Context<AppEnv>, target: Principal): Response | undefined => {
    if (c.get("token")?.allows(target) !== false) return undefined;
    c.set("errorCode", "FORBIDDEN");
    return problem(
      new RekeyError("FORBIDDEN", `This token may not act on the ${principalLabel(target)}.`, {
        hint: "Its principals list in the token configuration names the principals it may act on.",
        details: { principal: principalLabel(target) },
      }),
      c,
      { title: "Principal not allowed for this token" },
    );
  };

  const scopeProblem = (c: Context<AppEnv>, scope: Scope): Response | undefined => {
    if (c.get("token")?.scopes.has(scope) === true) return undefined;
    c.set("errorCode", "FORBIDDEN");
    return problem(new RekeyError("FORBIDDEN", `This token lacks the "${scope}" scope.`), c, {
      title: "Insufficient scope",
      headers: {
        "www-authenticate": `${BEARER_REALM}, error="insufficient_scope", scope="${scope}"`,
      },
    });
  };

  return {
    authenticate(c) {
      const token = verifyToken(requestHeader(c, "authorization"));
      if (token !== undefined) return token;
      c.set("errorCode", "UNAUTHORIZED");
      return problem(
        new RekeyError("UNAUTHORIZED", "Missing or unknown bearer token.", {
          hint: "Send Authorization: Bearer <token> with a configured token.",
        }),
        c,
        {
          status: 401,
          title: "Authentication required",
          type: "urn:rekey:error:bearer-token",
          headers: { "www-authenticate": BEARER_REALM },
        },
      );
    },
    scopeProblem,
    async principalProblem(c, agentId) {
      if (c.get("token")?.restricted !== true) return undefined;
      const target =
        agentId === undefined ? ((await rekey.activePrincipal()) ?? OPERATOR) : agent(agentId);
      return principalDenied(c, target);
    },
    principalDenied,
    requireScope: (scope) =>
      createMiddleware<AppEnv>(async (c, next) => {
        const denied = scopeProblem(c, scope);
        if (denied !== undefined) refuse(denied);
        await next();
      }),
  };
}
