import {
  type Clock,
  type CredentialStore,
  faucetIdOf,
  OPERATOR,
  type Principal,
  principalLabel,
  type Rekey,
  toRekeyError,
  verifyAuditChain,
} from "@rekey/core";
import { type Context, Hono } from "hono";
import { bodyLimit } from "hono/body-limit";
import { compress } from "hono/compress";
import { deleteCookie, getCookie, setCookie } from "hono/cookie";
import type { Logger } from "pino";
import { principalOfEntry } from "../events/event-hub.js";
import type { EventStreams } from "../events/event-stream.js";
import type { AuthenticatedToken } from "../tokens.js";
import { CONSOLE_CSS, CONSOLE_JS } from "./assets.js";
import { html } from "./html.js";
import {
  errorPage,
  loginPage,
  type PageContext,
  type PrincipalRow,
  principalPage,
  principalsPage,
  rotatePage,
} from "./pages.js";
import { type Session, type SessionStore, sameSecret } from "./sessions.js";

/**
 * The web console at /ui (`rekey-http --ui`): server-rendered pages over the same store, core
 * and token rules as the API. Security as an admin page: a session cookie (HttpOnly,
 * SameSite=Strict, Secure except on loopback), a CSRF token in every form, an Origin check on
 * every POST, a CSP without inline script or any other origin, no framing, no caching.
 */

export interface ConsoleOptions {
  store: CredentialStore;
  sessions: SessionStore;
  /** Mark the session cookie Secure (everything but plain HTTP on loopback). */
  secureCookie: boolean;
}

export interface ConsoleDeps extends ConsoleOptions {
  rekey: Rekey;
  clock: Clock;
  logger: Logger;
  streams: EventStreams | undefined;
  /** The API's bearer-token check: a token typed into the login form signs in with its scopes. */
  verifyToken(authorization: string | undefined): AuthenticatedToken | undefined;
  /** Called when the console changed a key, or may have: the status cache forgets its bodies. */
  keysChanged(): void;
}

const COOKIE = "rekey_session";
const SECURITY_HEADERS: Record<string, string> = {
  "content-security-policy":
    "default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self'; connect-src 'self'; form-action 'self'; frame-ancestors 'none'; base-uri 'none'",
  "x-frame-options": "DENY",
  "x-content-type-options": "nosniff",
  // Not no-referrer: Chrome then sends `Origin: null` with a form POST, which the Origin check refuses.
  "referrer-policy": "same-origin",
  "cross-origin-opener-policy": "same-origin",
  "cache-control": "no-store",
};

/** Operators first, then agents by id. */
function order(a: PrincipalRow, b: PrincipalRow): number {
  const rank = (row: PrincipalRow) =>
    row.principal.startsWith("agent:") ? Number(row.principal.slice(6)) : -1;
  return rank(a) - rank(b);
}

function slugOf(principal: Principal): string {
  return principal.kind === "operator" ? "operator" : `agent-${principal.agentId}`;
}

export function createConsoleApp(deps: ConsoleDeps): Hono {
  const { rekey, store, sessions, clock, logger, keysChanged } = deps;
  const app = new Hono();

  app.use(async (c, next) => {
    await next();
    for (const [name, value] of Object.entries(SECURITY_HEADERS)) c.res.headers.set(name, value);
  });

  const sessionOf = (c: Context): Session | undefined => sessions.get(getCookie(c, COOKIE));

  const context = (title: string, session?: Session): PageContext => ({
    title,
    now: clock.now(),
    ...(session === undefined
      ? {}
      : {
          session: {
            name: session.grant.name,
            csrf: session.csrf,
            canRotate: session.grant.scopes.has("rotate"),
          },
        }),
  });

  /** A POST from another site, or one that could be, is refused before anything else. */
  const crossSite = (c: Context): boolean => {
    const origin = c.req.header("origin");
    const host = c.req.header("host");
    if (c.req.header("sec-fetch-site") === "cross-site") return true;
    if (origin === undefined || origin === "null") return origin === "null";
    try {
      return new URL(origin).host !== host;
    } catch {
      return true;
    }
  };

  const rows = async (grant: Session["grant"]): Promise<PrincipalRow[]> => {
    const faucet = faucetIdOf(await rekey.baseUrl());
    const snapshot = await store.read();
    const found: PrincipalRow[] = [];
    const seen = new Set<string>();
    for (const record of Object.values(snapshot.data.principals)) {
      if (record.faucet !== faucet) continue;
      const principal = principalOfEntry(record.principal);
      if (!grant.allows(principal)) continue;
      const slug = slugOf(principal);
      if (seen.has(slug)) continue;
      seen.add(slug);
      found.push({ principal: record.principal, slug, label: principalLabel(principal), record });
    }
    return found.sort(order);
  };

  const rowOf = async (grant: Session["grant"], slug: string) =>
    (await rows(grant)).find((row) => row.slug === slug);

  const limitForm = bodyLimit({
    maxSize: 4096,
    onError: (c) => c.html(errorPage(context("Request too large"), "The form was too large."), 413),
  });

  // Pages and assets gzipped (a 1000-agent principals page is about 440 KiB of HTML, 10x less
  // compressed); never the event stream, which must flush each event as it comes.
  const gzip = compress({ encoding: "gzip" });
  app.use("/", gzip);
  app.use("/principals/*", gzip);
  app.use("/assets/*", gzip);

  app.get("/assets/console.js", (c) =>
    c.body(CONSOLE_JS, 200, { "content-type": "text/javascript; charset=utf-8" }),
  );
  app.get("/assets/console.css", (c) =>
    c.body(CONSOLE_CSS, 200, { "content-type": "text/css; charset=utf-8" }),
  );

  app.get("/login", (c) => {
    if (sessionOf(c) !== undefined) return c.redirect("/ui", 303);
    return c.html(loginPage(context("Sign in")));
  });

  app.post("/login", limitForm, async (c) => {
    if (crossSite(c))
      return c.html(errorPage(context("Refused"), "Cross-site sign-in refused."), 403);
    const form = await c.req.parseBody();
    const token = typeof form.token === "string" ? form.token.trim() : "";
    const verified = token === "" ? undefined : deps.verifyToken(`Bearer ${token}`);
    const session =
      (token === "" ? undefined : sessions.redeem(token)) ??
      (verified === undefined ? undefined : sessions.start(verified));
    if (session === undefined) {
      return c.html(loginPage(context("Sign in"), "Unknown, expired or already used token."), 401);
    }
    if (!session.grant.scopes.has("status")) {
      sessions.end(session.id);
      return c.html(
        loginPage(context("Sign in"), 'This token lacks the "status" scope the console needs.'),
        403,
      );
    }
    logger.info({ token_name: session.grant.name }, "console sign-in");
    setCookie(c, COOKIE, session.id, {
      httpOnly: true,
      secure: deps.secureCookie,
      sameSite: "Strict",
      path: "/ui",
    });
    return c.redirect("/ui", 303);
  });

  app.post("/logout", limitForm, async (c) => {
    const session = sessionOf(c);
    const form = await c.req.parseBody();
    if (
      session !== undefined &&
      (crossSite(c) || !sameSecret(String(form.csrf ?? ""), session.csrf))
    ) {
      return c.html(errorPage(context("Refused", session), "Missing or wrong CSRF token."), 403);
    }
    sessions.end(session?.id);
    deleteCookie(c, COOKIE, { path: "/ui", secure: deps.secureCookie });
    return c.redirect("/ui/login", 303);
  });

  /** The signed-in session, or the answer for a request without one. */
  const requireSession = (c: Context) => {
    const session = sessionOf(c);
    if (session === undefined) return { response: c.redirect("/ui/login", 303) };
    return { session };
  };

  const failure = (c: Context, session: Session, thrown: unknown) => {
    const error = toRekeyError(thrown);
    const status = error.code === "NOT_FOUND" ? 404 : error.code === "INTERNAL" ? 500 : 409;
    if (error.code === "INTERNAL") logger.error({ code: error.code }, "console: unexpected error");
    return c.html(
      errorPage(context("Could not do that", session), `${error.code}: ${error.message}`),
      status,
    );
  };

  app.get("/", async (c) => {
    const { session, response } = requireSession(c);
    if (session === undefined) return response;
    try {
      return c.html(principalsPage(context("Principals", session), await rows(session.grant)));
    } catch (thrown) {
      return failure(c, session, thrown);
    }
  });

  app.get("/principals/:slug", async (c) => {
    const { session, response } = requireSession(c);
    if (session === undefined) return response;
    try {
      const row = await rowOf(session.grant, c.req.param("slug"));
      if (row === undefined) {
        return c.html(errorPage(context("Not found", session), "No such principal here."), 404);
      }
      const all = await rekey.history();
      const entries = all.filter(
        (entry) =>
          entry.principal === row.principal ||
          (row.slug === "operator" && entry.principal === "operator"),
      );
      const last = row.record.lastRotation;
      const notice =
        c.req.query("rotated") !== undefined && last !== undefined
          ? html`<p class="notice" role="status">Rotated: the new key <code>${last.newFingerprint}</code> is stored${last.verified ? " and verified" : ""}; the withdrawal cooldown runs until ${last.cooldownUntil}.</p>`
          : undefined;
      return c.html(
        principalPage(
          context(row.label, session),
          row,
          { entries, verdict: verifyAuditChain(all) },
          notice,
        ),
      );
    } catch (thrown) {
      return failure(c, session, thrown);
    }
  });

  const rotationTarget = (row: PrincipalRow): Principal => {
    const principal = principalOfEntry(row.principal);
    return principal.kind === "operator" ? OPERATOR : principal;
  };

  app.get("/principals/:slug/rotate", async (c) => {
    const { session, response } = requireSession(c);
    if (session === undefined) return response;
    if (!session.grant.scopes.has("rotate")) {
      return c.html(
        errorPage(context("Not allowed", session), 'This sign-in lacks the "rotate" scope.'),
        403,
      );
    }
    try {
      const row = await rowOf(session.grant, c.req.param("slug"));
      if (row === undefined) {
        return c.html(errorPage(context("Not found", session), "No such principal here."), 404);
      }
      const plan = await rekey.rotateKey({ target: rotationTarget(row), dryRun: true });
      return c.html(rotatePage(context(`Rotate ${row.label}`, session), row, plan));
    } catch (thrown) {
      return failure(c, session, thrown);
    }
  });

  /**
   * A form that changes what a principal's consumers hold (a rotation, a delivery retry): a
   * session, a same-site POST carrying its CSRF token and the rotate scope are checked first,
   * in that order, then `act` runs on the principal the URL names.
   */
  const principalForm =
    (
      words: { signedOut: string; refusedLog: string; nothing: string },
      act: (
        c: Context,
        session: Session,
        row: PrincipalRow,
        form: Awaited<ReturnType<Context["req"]["parseBody"]>>,
      ) => Promise<Response>,
    ) =>
    async (c: Context) => {
      const session = sessionOf(c);
      if (session === undefined) {
        return c.html(errorPage(context("Signed out"), words.signedOut), 401);
      }
      const form = await c.req.parseBody();
      if (crossSite(c) || !sameSecret(String(form.csrf ?? ""), session.csrf)) {
        logger.warn({ token_name: session.grant.name }, words.refusedLog);
        return c.html(
          errorPage(
            context("Refused", session),
            `Missing or wrong CSRF token: nothing was ${words.nothing}.`,
          ),
          403,
        );
      }
      if (!session.grant.scopes.has("rotate")) {
        return c.html(
          errorPage(context("Not allowed", session), 'This sign-in lacks the "rotate" scope.'),
          403,
        );
      }
      try {
        const row = await rowOf(session.grant, c.req.param("slug") ?? "");
        if (row === undefined) {
          return c.html(errorPage(context("Not found", session), "No such principal here."), 404);
        }
        return await act(c, session, row, form);
      } catch (thrown) {
        return failure(c, session, thrown);
      }
    };

  app.post(
    "/principals/:slug/rotate",
    limitForm,
    principalForm(
      {
        signedOut: "Sign in again to rotate.",
        refusedLog: "console: rotation without a valid CSRF token refused",
        nothing: "rotated",
      },
      async (c, session, row, form) => {
        if (typeof form.expected === "string" && form.expected !== row.record.fingerprint) {
          return c.html(
            errorPage(
              context("Already rotated", session),
              `The key of ${row.label} changed since the plan was shown (now ${row.record.fingerprint ?? "none"}): nothing was rotated. Look at the new plan before rotating again.`,
            ),
            409,
          );
        }
        let result: Awaited<ReturnType<typeof rekey.rotateKey>>;
        try {
          result = await rekey.rotateKey({ target: rotationTarget(row) });
        } finally {
          // As the API's rotate route: this process's own rotation shows in the next status poll.
          keysChanged();
        }
        logger.info(
          {
            token_name: session.grant.name,
            principal: row.principal,
            fingerprint: result.newFingerprint,
          },
          "console: rotated",
        );
        return c.redirect(`/ui/principals/${row.slug}?rotated=1`, 303);
      },
    ),
  );

  // Retrying deliveries changes what consumers hold, so it takes what a rotation takes.
  app.post(
    "/principals/:slug/deliveries/retry",
    limitForm,
    principalForm(
      {
        signedOut: "Sign in again to retry deliveries.",
        refusedLog: "console: delivery retry without a valid CSRF token refused",
        nothing: "delivered",
      },
      async (c, session, row) => {
        const outcomes = await rekey.deliver({ principal: rotationTarget(row) });
        logger.info(
          {
            token_name: session.grant.name,
            principal: row.principal,
            delivered: outcomes.filter((outcome) => outcome.status === "delivered").length,
            failed: outcomes.filter((outcome) => outcome.status === "failed").length,
          },
          "console: deliveries retried",
        );
        return c.redirect(`/ui/principals/${row.slug}`, 303);
      },
    ),
  );

  app.get("/events", async (c) => {
    const session = sessionOf(c);
    if (session === undefined || deps.streams === undefined) {
      return c.body(null, session === undefined ? 401 : 404);
    }
    try {
      return await deps.streams.open(
        { name: `console:${session.grant.name}`, allows: session.grant.allows },
        c.req.header("last-event-id"),
      );
    } catch (thrown) {
      const error = toRekeyError(thrown);
      return c.body(null, error.code === "RATE_LIMITED" ? 429 : 503);
    }
  });

  return app;
}
