import type { z } from "@hono/zod-openapi";
import { RekeyError } from "@rekey/core";
import type { Context } from "hono";
import type { AppEnv } from "./http-env.js";
import { ROUTE_QUERIES } from "./routes.js";

/** INVALID_INPUT listing zod's issues: what every route answers to a request it cannot parse. */
export function invalidInput(error: z.ZodError): RekeyError {
  const issues = error.issues.map((issue) =>
    issue.path.length === 0 ? issue.message : `${issue.path.join(".")}: ${issue.message}`,
  );
  return new RekeyError("INVALID_INPUT", `Invalid request: ${issues.join("; ")}`, {
    details: { issues },
  });
}

/**
 * The query as Hono's validator hands it to zod (a parameter given once is a string, given
 * more often an array), parsed with `schema`.
 * @throws RekeyError INVALID_INPUT when the query does not match.
 */
export function parseQuery<Schema extends z.ZodType>(
  c: Context<AppEnv>,
  schema: Schema,
): z.infer<Schema> {
  const query: Record<string, string | string[]> = {};
  for (const [name, values] of Object.entries(c.req.queries())) {
    query[name] = values.length === 1 ? (values[0] ?? "") : values;
  }
  const parsed = schema.safeParse(query);
  if (!parsed.success) throw invalidInput(parsed.error);
  return parsed.data;
}

/**
 * The refusal of a query naming a parameter its route does not take, or undefined when it names
 * none (or the path is not one of the API's). Hono hands a handler only the parameters it asks
 * for, so an unknown one was dropped silently: `GET /v1/status?agentid=7` answered for the
 * operator, as if no parameter had been given.
 */
export function unknownQueryError(c: Context<AppEnv>): RekeyError | undefined {
  const route = ROUTE_QUERIES.get(c.req.path);
  // Another method on a known path is a 405 (middleware/errors.ts), whatever its query.
  const method = c.req.method === "HEAD" ? "GET" : c.req.method;
  if (route === undefined || route.method !== method) return undefined;
  const unexpected = Object.keys(c.req.queries()).filter((name) => !route.names.includes(name));
  if (unexpected.length === 0) return undefined;
  // Names are the caller's text: quoted and cut short, as zod quotes an unrecognised field.
  const quoted = unexpected.map((name) => JSON.stringify(name.slice(0, 40)));
  const what = `${c.req.method} ${c.req.path}`;
  return new RekeyError(
    "INVALID_INPUT",
    route.names.length === 0
      ? `${what} takes no query parameters, not ${quoted.join(", ")}`
      : `Unknown query parameter ${quoted.join(", ")}: ${what} takes only ${route.names.join(", ")}`,
    {
      hint: route.hint,
      details: {
        issues: unexpected.map(
          (name) => `${name.slice(0, 40)}: not a query parameter of this route`,
        ),
        unexpected: unexpected.map((name) => name.slice(0, 40)),
      },
    },
  );
}
