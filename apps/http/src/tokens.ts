import { createHash, timingSafeEqual } from "node:crypto";
import { type Principal, principalKey, RekeyError } from "@rekey/core";
import { z } from "zod";

/**
 * What a bearer token may do. `force` is asked on top of `rotate` for `{"force": true}`, which
 * starts a new cooldown inside a running one; `metrics` lets a token read `/metrics` (which then
 * needs one).
 */
export const SCOPES = ["status", "rotate", "force", "read_key", "metrics"] as const;
/** One of {@link SCOPES}. */
export type Scope = (typeof SCOPES)[number];

/** "operator", "agent:7", or "agent:*" (every agent). */
const PRINCIPAL_PATTERN = /^(operator|agent:\*|agent:[1-9]\d{0,9})$/;

const tokenConfigSchema = z
  .object({
    name: z.string().regex(/^[A-Za-z0-9_.-]{1,64}$/, "name: 1-64 letters, digits, '.', '_' or '-'"),
    sha256: z
      .string()
      .regex(/^[0-9a-fA-F]{64}$/, "sha256: the token's SHA-256 as 64 hex digits")
      .transform((hex) => hex.toLowerCase()),
    scopes: z.array(z.enum(SCOPES)).min(1, `scopes: at least one of ${SCOPES.join(", ")}`),
    /** The principals the token may act on; absent: every principal of the profile. */
    principals: z
      .array(
        z.string().regex(PRINCIPAL_PATTERN, 'principals: "operator", "agent:<id>" or "agent:*"'),
      )
      .min(1, "principals: at least one, or leave the field out")
      .optional(),
  })
  .strict();

const tokenListSchema = z
  .array(tokenConfigSchema)
  .min(1, "configure at least one token")
  .refine((tokens) => new Set(tokens.map((token) => token.name)).size === tokens.length, {
    message: "token names must be unique",
  });

/** A configured bearer token: its name (for logs and rate limits), hash and scopes. */
export type TokenConfig = z.infer<typeof tokenConfigSchema>;

/** The token that authenticated a request. */
export interface AuthenticatedToken {
  name: string;
  scopes: ReadonlySet<Scope>;
  /** Whether the token may act on `principal` (its `principals` list, or every one). */
  allows(principal: Principal): boolean;
  /** True when the token has a `principals` list. */
  restricted: boolean;
}

function principalCheck(
  principals: readonly string[] | undefined,
): (principal: Principal) => boolean {
  if (principals === undefined) return () => true;
  const allowed = new Set(principals);
  return (principal) =>
    allowed.has(principalKey(principal)) || (principal.kind === "agent" && allowed.has("agent:*"));
}

/**
 * Parses the token configuration (JSON text from `REKEY_HTTP_TOKENS` or `--tokens-file`).
 * @throws RekeyError CONFIG_INVALID when it is not valid JSON or not a valid token list.
 */
export function parseTokenConfig(json: string): TokenConfig[] {
  let value: unknown;
  try {
    value = JSON.parse(json);
  } catch {
    // The text may hold a raw token by mistake: never echo it.
    throw new RekeyError("CONFIG_INVALID", "The token configuration is not valid JSON", {
      hint: 'Use [{"name":"deploy","sha256":"<64 hex>","scopes":["status","rotate"]}].',
    });
  }
  const parsed = tokenListSchema.safeParse(value);
  if (!parsed.success) {
    const issues = parsed.error.issues.map((issue) => `${issue.path.join(".")}: ${issue.message}`);
    throw new RekeyError("CONFIG_INVALID", `Invalid token configuration: ${issues.join("; ")}`, {
      details: { issues },
    });
  }
  return parsed.data;
}

/** SHA-256 of a token as hex: what the configuration holds instead of the token. */
export function hashToken(token: string): string {
  return createHash("sha256").update(token, "utf8").digest("hex");
}

/** How many distinct Authorization values the verifier remembers (a handful of clients in practice). */
const VERIFIED_CACHE_SIZE = 256;

/**
 * Builds the bearer token check. The presented token is hashed and compared with every
 * configured hash in constant time, without stopping at the first match, so neither the
 * comparison nor the position of the match shows in the timing.
 *
 * A header value that authenticated is remembered (up to 256, oldest forgotten first), so a
 * client that polls pays the hash once rather than on every request. Only successes are kept:
 * unknown tokens are hashed every time, so guessing gains nothing, and the cache holds nothing
 * a configured token's holder did not already send. Throws nothing.
 */
export function createTokenVerifier(
  tokens: readonly TokenConfig[],
): (authorization: string | undefined) => AuthenticatedToken | undefined {
  const configured = tokens.map((token) => ({
    hash: Buffer.from(token.sha256, "hex"),
    token: {
      name: token.name,
      scopes: new Set<Scope>(token.scopes),
      allows: principalCheck(token.principals),
      restricted: token.principals !== undefined,
    } satisfies AuthenticatedToken,
  }));
  const verified = new Map<string, AuthenticatedToken>();
  return (authorization) => {
    if (authorization === undefined) return undefined;
    const remembered = verified.get(authorization);
    if (remembered !== undefined) return remembered;
    const match = /^Bearer[ ]+([^\s]+)\s*$/i.exec(authorization);
    const presented = match?.[1];
    if (presented === undefined) return undefined;
    const hash = createHash("sha256").update(presented, "utf8").digest();
    let found: AuthenticatedToken | undefined;
    for (const entry of configured) {
      if (timingSafeEqual(hash, entry.hash) && found === undefined) found = entry.token;
    }
    if (found !== undefined) {
      if (verified.size >= VERIFIED_CACHE_SIZE) {
        const oldest = verified.keys().next().value;
        if (oldest !== undefined) verified.delete(oldest);
      }
      verified.set(authorization, found);
    }
    return found;
  };
}
