import type { EnvReader } from "../env-reader.js";
import type { CorsOptions } from "./cors.js";

/** `CORS_ORIGINS`: comma-separated exact origins. Unset: loopback origins in development, none in production. */
export function readCorsConfig(r: EnvReader): CorsOptions {
  if (r.optional("CORS_ORIGINS") === undefined) return { origins: [], loopback: !r.production };
  const origins: string[] = [];
  for (const o of r.list("CORS_ORIGINS")) {
    let url: URL | undefined;
    try {
      url = new URL(o);
    } catch {
      url = undefined;
    }
    // Browsers send an origin with no path and no trailing slash, and we compare exactly.
    if (!url || (url.protocol !== "http:" && url.protocol !== "https:") || url.origin !== o) {
      r.problems.push(`CORS_ORIGINS entries must be origins like https://app.example.com, got "${o}"`);
    } else origins.push(o);
  }
  return { origins, loopback: false };
}
