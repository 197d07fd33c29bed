import { formatDuration } from "@rekey/core/duration";

/**
 * The console's only script and stylesheet, served from /ui/assets/ (the CSP allows no inline
 * script or style and nothing from another origin: the console works offline). Kept as strings
 * so the bundled binary carries them.
 */

/**
 * Progressive enhancement; every page works without it. It (1) ticks cooldown countdowns,
 * (2) reloads the page's main region when /ui/events reports a change, (3) completes a login link
 * (its token travels in the URL fragment, which no server or log sees, and is wiped at once).
 */
export const CONSOLE_JS = `"use strict";
(() => {
  const body = document.body;
  const offset = Number(body.dataset.serverNow || Date.now()) - Date.now();
  const formatDuration = ${formatDuration.toString()};
  const format = (ms) => (ms <= 0 ? "ended" : formatDuration(Math.ceil(ms / 1000)) + " left");
  const tick = () => {
    for (const node of document.querySelectorAll("time[data-countdown]")) {
      node.textContent = format(Date.parse(node.getAttribute("datetime")) - (Date.now() + offset));
    }
  };
  tick();
  setInterval(tick, 1000);

  const login = document.getElementById("login-token");
  if (login && location.hash.startsWith("#token=")) {
    login.value = decodeURIComponent(location.hash.slice(7));
    history.replaceState(null, "", location.pathname);
    login.form.submit();
    return;
  }

  if (!body.dataset.live || typeof EventSource === "undefined") return;
  const status = document.getElementById("live-status");
  let refreshing = Promise.resolve();
  const refresh = (note) => {
    refreshing = refreshing.then(async () => {
      const response = await fetch(location.href, { credentials: "same-origin" });
      if (!response.ok) return;
      const page = new DOMParser().parseFromString(await response.text(), "text/html");
      const fresh = page.querySelector("main");
      const current = document.querySelector("main");
      if (fresh && current) current.replaceChildren(...fresh.childNodes);
      tick();
      if (status) status.textContent = note;
    }).catch(() => {});
  };
  const events = new EventSource("/ui/events");
  const describe = (type, data) => {
    const who = data.label || "a principal";
    if (type === "rotation") return "Updated: " + who + " rotated (" + data.outcome + ").";
    if (type === "cooldown.ended") return "Updated: the cooldown of " + who + " ended.";
    if (type === "delivery") return "Updated: a delivery for " + who + ".";
    return "Updated.";
  };
  for (const type of ["rotation", "delivery", "audit", "cooldown.ended", "resync"]) {
    events.addEventListener(type, (event) => {
      let data = {};
      try { data = JSON.parse(event.data); } catch {}
      refresh(describe(type, data));
    });
  }
  events.addEventListener("open", () => { if (status && status.textContent === "") status.textContent = "Live."; });
})();
`;

export const CONSOLE_CSS = `:root { color-scheme: light; --ink: #1b1f24; --muted: #505a66; --line: #d0d7de; --accent: #0b57d0; --warn: #8a4b00; --bad: #b3261e; --ok: #1a6b2f; }
* { box-sizing: border-box; }
body { margin: 0; font: 15px/1.5 system-ui, -apple-system, "Segoe UI", sans-serif; color: var(--ink); background: #fff; }
header { display: flex; align-items: center; gap: 1rem; padding: .6rem 1.2rem; border-bottom: 1px solid var(--line); }
header .brand { font-weight: 700; color: var(--ink); text-decoration: none; }
header .who { margin-left: auto; color: var(--muted); }
header form { margin: 0; }
main { padding: 1rem 1.2rem; max-width: 72rem; }
h1 { font-size: 1.35rem; margin: .2rem 0 1rem; }
h2 { font-size: 1.1rem; margin: 1.5rem 0 .5rem; }
table { border-collapse: collapse; width: 100%; }
th, td { text-align: left; padding: .4rem .6rem; border-bottom: 1px solid var(--line); vertical-align: top; }
th { font-weight: 600; color: var(--muted); font-size: .85rem; text-transform: uppercase; letter-spacing: .03em; }
code { font: .9em ui-monospace, SFMono-Regular, Menlo, monospace; }
a { color: var(--accent); }
a:focus-visible, button:focus-visible, input:focus-visible { outline: 3px solid var(--accent); outline-offset: 2px; }
.muted { color: var(--muted); }
.warn { color: var(--warn); font-weight: 600; }
.bad { color: var(--bad); font-weight: 600; }
.ok { color: var(--ok); font-weight: 600; }
.button, button { display: inline-block; font: inherit; padding: .35rem .9rem; border-radius: 6px; border: 1px solid var(--accent); background: var(--accent); color: #fff; cursor: pointer; text-decoration: none; }
.button.secondary, button.secondary { background: #fff; color: var(--accent); }
.notice { border: 1px solid var(--line); border-left: 4px solid var(--accent); padding: .6rem .9rem; margin: 0 0 1rem; }
.notice.error { border-left-color: var(--bad); }
.confirm { border: 1px solid var(--line); border-radius: 8px; padding: 1rem 1.2rem; max-width: 40rem; }
label { display: block; font-weight: 600; margin-bottom: .3rem; }
input[type=password] { font: inherit; padding: .35rem .5rem; width: 100%; max-width: 28rem; border: 1px solid var(--muted); border-radius: 6px; }
ol.timeline { list-style: none; padding: 0; }
ol.timeline li { border-left: 3px solid var(--line); padding: .2rem 0 .6rem .8rem; }
#live-status { min-height: 1.5em; color: var(--muted); }
`;
