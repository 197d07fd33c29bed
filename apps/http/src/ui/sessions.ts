import { randomBytes, timingSafeEqual } from "node:crypto";
import type { Clock } from "@rekey/core";
import type { AuthenticatedToken } from "../tokens.js";

/**
 * The console's sign-in: one-time login tokens (the link `rekey-http --ui` prints, like
 * Jupyter's), exchanged for a session held in memory and named by an HttpOnly cookie. A session
 * carries the scopes and principals list of what it was exchanged for, so the console allows
 * exactly what the API would; and a CSRF token that every form posts back.
 */

/** What a session may do: a bearer token's scopes and principals. */
export type SessionGrant = Omit<AuthenticatedToken, "name"> & { name: string };

export interface Session {
  id: string;
  csrf: string;
  grant: SessionGrant;
  expiresAt: number;
}

export interface SessionStore {
  /** A new one-time login token for `grant`, valid `ttlMs`. */
  issueLoginToken(grant: SessionGrant, ttlMs?: number): string;
  /** Spends a login token (once) for a new session; undefined when unknown, spent or expired. */
  redeem(loginToken: string): Session | undefined;
  /** A new session for a grant proved another way (a bearer token typed into the login form). */
  start(grant: SessionGrant): Session;
  get(sessionId: string | undefined): Session | undefined;
  end(sessionId: string | undefined): void;
}

const LOGIN_TOKEN_TTL_MS = 15 * 60_000;
const SESSION_TTL_MS = 8 * 60 * 60_000;
/** Sessions and login tokens held at most; the oldest go first. */
const MAX_ENTRIES = 1000;

const random = () => randomBytes(32).toString("base64url");

/** Equal strings, in time that does not depend on where they differ. */
export function sameSecret(a: string, b: string): boolean {
  const left = Buffer.from(a);
  const right = Buffer.from(b);
  return left.length === right.length && timingSafeEqual(left, right);
}

export function createSessionStore(clock: Clock): SessionStore {
  const loginTokens = new Map<string, { grant: SessionGrant; expiresAt: number }>();
  const sessions = new Map<string, Session>();
  const bound = <Value>(map: Map<string, Value>) => {
    while (map.size > MAX_ENTRIES) map.delete(map.keys().next().value as string);
  };
  const start = (grant: SessionGrant): Session => {
    const session = {
      id: random(),
      csrf: random(),
      grant,
      expiresAt: clock.now() + SESSION_TTL_MS,
    };
    sessions.set(session.id, session);
    bound(sessions);
    return session;
  };
  return {
    issueLoginToken(grant, ttlMs = LOGIN_TOKEN_TTL_MS) {
      const token = random();
      loginTokens.set(token, { grant, expiresAt: clock.now() + ttlMs });
      bound(loginTokens);
      return token;
    },
    redeem(loginToken) {
      // Map lookup by the token itself: its hash distribution, not a string compare, finds it.
      const entry = loginTokens.get(loginToken);
      if (entry === undefined) return undefined;
      loginTokens.delete(loginToken);
      return entry.expiresAt > clock.now() ? start(entry.grant) : undefined;
    },
    start,
    get(sessionId) {
      if (sessionId === undefined) return undefined;
      const session = sessions.get(sessionId);
      if (session === undefined) return undefined;
      if (session.expiresAt <= clock.now()) {
        sessions.delete(sessionId);
        return undefined;
      }
      return session;
    },
    end(sessionId) {
      if (sessionId !== undefined) sessions.delete(sessionId);
    },
  };
}
