import type { OpenAPIHono } from "@hono/zod-openapi";
import { VERSION } from "./version.js";

/**
 * The parts of the OpenAPI document that are not routes: info, license, servers, the bearer
 * scheme and the response headers every route shares. The routes come from routes.ts.
 */
export const OPENAPI_DOCUMENT_CONFIG = {
  openapi: "3.1.0",
  info: {
    title: "rekey HTTP endpoint",
    version: VERSION,
    description:
      "Rotate and read Lightning Faucet keys. /healthz, /readyz, /metrics and /openapi.json need no token; everything under /v1 needs a bearer token with the route's scope. Bodies use rekey's one JSON vocabulary (docs/json-vocabulary.md): the same field names and shapes as the CLI's --json and the MCP tools' results. Errors are application/problem+json (RFC 9457) with core's `code`, `message`, `hint` and error facts. A known path asked with another method answers 405 with `Allow`.",
    license: { name: "MIT", identifier: "MIT" },
  },
  servers: [
    {
      url: "http://127.0.0.1:8787",
      description: "rekey-http on its default address (--host, --port and TLS change it).",
    },
  ],
};

/** Registers the bearer scheme and the shared response headers with the app's registry. */
export function registerOpenApiComponents(app: Pick<OpenAPIHono, "openAPIRegistry">): void {
  const registry = app.openAPIRegistry;
  registry.registerComponent("securitySchemes", "bearerAuth", {
    type: "http",
    scheme: "bearer",
    description:
      "A token configured by its SHA-256 (REKEY_HTTP_TOKENS or --tokens-file) with scopes status, rotate, force, read_key, metrics, and optionally the principals it may act on (operator, agent:<id>, agent:*).",
  });
  registry.registerComponent("headers", "X-Request-Id", {
    description:
      "The request's id: the caller's X-Request-Id when it is a safe token, otherwise a new UUID. Logged with every line about the request.",
    schema: { type: "string" },
  });
  registry.registerComponent("headers", "Retry-After", {
    description: "Seconds to wait before trying again (the cooldown or rate limit left).",
    schema: { type: "integer", minimum: 1 },
  });
}
