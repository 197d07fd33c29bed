import { z } from "@hono/zod-openapi";
import { MAX_ID } from "@rekey/core";
import * as vocabulary from "@rekey/core/vocabulary";

/**
 * The zod schemas of the HTTP API. They validate requests and, through @hono/zod-openapi,
 * are the OpenAPI 3.1 document: one source for both.
 */

/** An agent id in a JSON body. */
export const agentIdBody = z
  .number()
  .int()
  .positive()
  .max(MAX_ID)
  .openapi({ description: "An agent of the operator; omitted: the profile's active principal." });

/**
 * The optional `agent_id` query parameter. A query value is text, so it is checked as digits
 * here (range-checked by core's `agent()`), and documented as what it means: an integer.
 */
export const agentIdQuery = z.object({
  agent_id: z
    .string()
    .regex(/^[1-9][0-9]{0,9}$/, "agent_id must be a positive whole number")
    .optional()
    .openapi({
      param: { name: "agent_id", in: "query" },
      description: "An agent id; omitted: the profile's active principal.",
      type: "integer",
      minimum: 1,
      maximum: MAX_ID,
      pattern: undefined,
      example: 7,
    }),
});

/** `POST /v1/rotate` body: strict, so an unknown field is INVALID_INPUT rather than ignored. */
export const rotateBodySchema = z
  .object({
    agent_id: agentIdBody.optional(),
    dry_run: z
      .boolean()
      .optional()
      .openapi({ description: "Return the plan and call nothing upstream." }),
    force: z.boolean().optional().openapi({
      description: "Rotate even inside the previous rotation's cooldown (restarts it).",
    }),
  })
  .strict()
  .openapi("RotateRequest");

/** `POST /v1/rotate` headers: the optional Idempotency-Key. */
export const rotateHeadersSchema = z.object({
  "idempotency-key": z
    .string()
    .regex(/^[\x21-\x7e]{1,255}$/, "Idempotency-Key must be 1-255 visible ASCII characters")
    .optional()
    .openapi({
      param: { name: "idempotency-key", in: "header" },
      description:
        "Same key and same body within 24 hours returns the first response without rotating again; same key with another body is 422.",
      example: "deploy-2026-11-27-1",
    }),
});

// The response bodies are core's JSON vocabulary (docs/json-vocabulary.md): the same shapes
// as the CLI's --json and the MCP tools' results, named here as OpenAPI components.

/** A principal on the wire: `{ kind: "operator" }` or `{ kind: "agent", agent_id }`. */
export const principalSchema = z.object(vocabulary.principalSchema.shape).openapi("Principal");

/** One delivery of a rotation's key to a target (never the key). */
export const deliveryOutcomeSchema = z
  .object(vocabulary.deliveryOutcomeSchema.shape)
  .openapi("DeliveryOutcome");

/** A completed rotation: fingerprints, never the key. */
export const rotationResultSchema = z
  .object({
    ...vocabulary.rotationSchema.omit({ api_key: true }).shape,
    principal: principalSchema,
    deliveries: z.array(deliveryOutcomeSchema).optional(),
  })
  .openapi("RotationResult");

/** A dry run's plan. */
export const rotationPlanSchema = z
  .object({ ...vocabulary.rotationPlanSchema.shape, principal: principalSchema })
  .openapi("RotationPlan");

/**
 * `POST /v1/rotate` 200 body, told apart by `dry_run`. A plain union: an OpenAPI discriminator
 * must be a string property, and a boolean one turns generated clients' `dry_run` into a string.
 */
export const rotateResponseSchema = z
  .union([rotationResultSchema, rotationPlanSchema])
  .openapi("RotateResponse");

/** `GET /v1/status` 200 body. */
export const statusResponseSchema = z
  .object({ ...vocabulary.keyStatusSchema.shape, principal: principalSchema })
  .openapi("Status");

/** `GET /v1/agents` 200 body. */
export const agentsResponseSchema = z.object(vocabulary.agentListSchema.shape).openapi("Agents");

/** `GET /v1/keys/current` 200 body: the one carrying a raw key. */
export const currentKeyResponseSchema = z
  .object({
    principal: principalSchema,
    label: z.string(),
    fingerprint: z.string(),
    api_key: z.string().openapi({ description: "The raw key. Never cache or log it." }),
  })
  .openapi("CurrentKey");

/** `GET /healthz` body. */
export const healthzResponseSchema = z.object({ status: z.literal("ok") }).openapi("Alive");

/** `GET /readyz` body (200 or 503); no paths or URLs, as it is unauthenticated. */
export const readyzResponseSchema = z
  .object({
    status: z.enum(["ready", "not_ready"]),
    store: z.object({ ok: z.boolean() }),
    upstream: z.object({ ok: z.boolean() }),
  })
  .openapi("Readiness");

/** The RFC 9457 problem body (see problem.ts): its fields, then core's error vocabulary. */
export const problemSchema = z
  .object({
    ...vocabulary.errorSchema.shape,
    type: z.string().openapi({ example: "urn:rekey:error:cooldown-active" }),
    title: z.string(),
    status: z.number().int(),
    detail: z.string().openapi({ description: "The same text as `message`." }),
    request_id: z.string().optional(),
    principal: principalSchema.optional(),
  })
  .openapi("Problem");
