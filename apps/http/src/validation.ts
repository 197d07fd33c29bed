import type { z } from "@hono/zod-openapi";
import { RekeyError } from "@rekey/core";
import type { Context } from "hono";
import type { AppEnv } from "./http-env.js";

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
