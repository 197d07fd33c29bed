import { z } from "@hono/zod-openapi";
import { MAX_ID } from "@rekey/core";

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

/** A principal on the wire. */
export const principalSchema = z
  .object({
    kind: z.enum(["operator", "agent"]),
    agent_id: z.number().int().optional(),
  })
  .openapi("Principal");

/** One delivery of a rotation's key to a target (never the key). */
export const deliveryOutcomeSchema = z
  .object({
    target: z.string().openapi({ example: "lightning-wallet-1" }),
    kind: z.enum(["lightning-wallet", "dotenv", "exec", "store", "webhook"]),
    description: z.string(),
    status: z.enum(["delivered", "failed", "current", "deferred"]).openapi({
      description:
        "delivered now; failed now (the rotation still stands; retried with back-off); current: held it already; deferred: backing off.",
    }),
    fingerprint: z.string().openapi({ description: "Fingerprint of the key delivered." }),
    error: z.object({ code: z.string(), message: z.string() }).optional(),
    next_attempt_at: z.string().optional(),
  })
  .openapi("DeliveryOutcome");

/** A completed rotation: fingerprints, never the key. */
export const rotationResultSchema = z
  .object({
    dry_run: z.literal(false),
    principal: principalSchema,
    label: z.string().openapi({ example: "agent 7" }),
    old_fingerprint: z.string(),
    fingerprint: z.string().openapi({ description: "Fingerprint of the new key." }),
    rotated_at: z.string(),
    cooldown_until: z.string(),
    cooldown_minutes: z.number().int(),
    verified: z.boolean(),
    shared: z.boolean().openapi({
      description: "Another caller did this rotation; its result is returned.",
    }),
    request_id: z.string(),
    deliveries: z.array(deliveryOutcomeSchema).optional().openapi({
      description: "The deliveries of the new key to the principal's targets, when it has any.",
    }),
  })
  .openapi("RotationResult");

/** A dry run's plan. */
export const rotationPlanSchema = z
  .object({
    dry_run: z.literal(true),
    principal: principalSchema,
    label: z.string(),
    fingerprint: z.string().openapi({ description: "Fingerprint of the current key." }),
    action: z.enum(["regenerate_operator_key", "regenerate_agent_key"]),
    cooldown_minutes: z.number().int(),
    cooldown_would_end_at: z.string(),
    current_cooldown_until: z.string().optional(),
    blocked_by_cooldown: z.boolean(),
  })
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
  .object({
    principal: principalSchema,
    label: z.string(),
    profile: z.string(),
    base_url: z.string(),
    has_key: z.boolean(),
    key_source: z.enum(["store", "env"]).optional(),
    fingerprint: z.string().optional(),
    name: z.string().optional(),
    saved_at: z.string().optional(),
    key_age_seconds: z.number().optional(),
    last_rotation: z
      .object({
        request_id: z.string(),
        old_fingerprint: z.string(),
        new_fingerprint: z.string(),
        rotated_at: z.string(),
        cooldown_until: z.string(),
        verified: z.boolean(),
        surface: z.string(),
      })
      .optional(),
    cooldown_until: z.string().optional(),
    cooldown_remaining_seconds: z.number(),
    pending_rotation: z
      .object({
        request_id: z.string(),
        started_at: z.string(),
        phase: z.enum(["requested", "stored"]),
      })
      .optional(),
    deliveries: z
      .array(
        z.object({
          target: z.string(),
          kind: z.string(),
          description: z.string(),
          state: z.enum(["current", "stale", "failing"]).openapi({
            description:
              "current: holds the key; stale: an older one; failing: the last attempt failed.",
          }),
          delivered_fingerprint: z.string().optional(),
          at: z.string().optional(),
          error: z.object({ code: z.string(), message: z.string() }).optional(),
          next_attempt_at: z.string().optional(),
        }),
      )
      .optional()
      .openapi({ description: "The principal's delivery targets, when it has any." }),
    store: z.object({ kind: z.string(), location: z.string() }),
  })
  .openapi("Status");

/** `GET /v1/agents` 200 body. */
export const agentsResponseSchema = z
  .object({
    agents: z.array(
      z.object({
        id: z.number().int(),
        name: z.string(),
        balance_sats: z.number(),
        is_active: z.boolean(),
        has_key: z.boolean(),
        fingerprint: z.string().optional(),
        cooldown_until: z.string().optional(),
        cooldown_remaining_seconds: z.number(),
        last_rotated_at: z.string().optional(),
      }),
    ),
  })
  .openapi("Agents");

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

/** The RFC 9457 problem body (see problem.ts). */
export const problemSchema = z
  .object({
    type: z.string().openapi({ example: "urn:rekey:error:cooldown-active" }),
    title: z.string(),
    status: z.number().int(),
    detail: z.string(),
    code: z.string().openapi({ description: "One of @rekey/core's error codes." }),
    hint: z.string().optional(),
    request_id: z.string().optional(),
    cooldown_until: z.string().optional(),
    retry_after_seconds: z.number().optional(),
    recovery: z.string().optional(),
    principal: z.string().optional(),
    issues: z.array(z.string()).optional(),
  })
  .openapi("Problem");
