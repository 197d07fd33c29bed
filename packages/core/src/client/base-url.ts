import { RekeyError } from "../errors.js";
import { isLoopbackHost } from "../loopback.js";

/** The real Lightning Faucet agent API endpoint. */
export const DEFAULT_API_URL = "https://lightningfaucet.com/ai-agents/api";

/** Environment variables read by {@link resolveBaseUrl}, first match wins. */
export const API_URL_ENV_VARS = ["REKEY_API_URL", "LIGHTNING_WALLET_API_URL"] as const;

/**
 * Parses and checks a faucet base URL: https anywhere, http only for loopback hosts, no
 * credentials in the URL. Returns it normalised (no trailing fragment).
 * @throws RekeyError CONFIG_INVALID for anything else; `source` names where the value came from.
 */
export function validateBaseUrl(value: string, source = "baseUrl"): URL {
  let url: URL;
  try {
    url = new URL(value);
  } catch (error) {
    throw new RekeyError("CONFIG_INVALID", `${source} is not a valid URL`, {
      hint: `Use an https URL such as ${DEFAULT_API_URL}.`,
      cause: error,
    });
  }
  if (url.username !== "" || url.password !== "") {
    throw new RekeyError("CONFIG_INVALID", `${source} must not contain credentials`, {
      hint: "Remove the user:password@ part of the URL.",
    });
  }
  const secure = url.protocol === "https:";
  const localHttp = url.protocol === "http:" && isLoopbackHost(url.hostname);
  if (!secure && !localHttp) {
    throw new RekeyError(
      "CONFIG_INVALID",
      `${source} must use https (http is allowed only for localhost), got ${url.protocol}//${url.host}`,
      { hint: `Use an https URL such as ${DEFAULT_API_URL}.` },
    );
  }
  url.hash = "";
  return url;
}

/**
 * The faucet base URL from the environment: `REKEY_API_URL`, then `LIGHTNING_WALLET_API_URL`,
 * then {@link DEFAULT_API_URL}. Empty values count as unset.
 * @throws RekeyError CONFIG_INVALID when the chosen variable is not an acceptable URL.
 */
export function resolveBaseUrl(env: Readonly<Record<string, string | undefined>>): string {
  for (const name of API_URL_ENV_VARS) {
    const value = env[name]?.trim();
    if (value) return validateBaseUrl(value, name).href;
  }
  return DEFAULT_API_URL;
}
