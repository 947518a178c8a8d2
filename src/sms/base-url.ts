import { type EnvReader, IN_PRODUCTION } from "../env-reader.js";

/**
 * A provider's API base URL variable (`TWILIO_API_BASE_URL`, `MSG91_API_BASE_URL`): https, or http outside
 * production (a local fake), no query or fragment, trailing slashes dropped.
 */
export function readBaseUrl(r: EnvReader, name: string, fallback: string): string {
  const raw = r.optional(name);
  if (raw === undefined) return fallback;
  let url: URL;
  try {
    url = new URL(raw);
  } catch {
    r.problems.push(`${name} must be a URL such as ${fallback}, got "${raw}"`);
    return fallback;
  }
  if (url.protocol !== "https:" && !(url.protocol === "http:" && !r.production)) {
    // Credentials travel in every request's headers.
    r.problems.push(
      `${name} must be an https:// URL${r.production ? ` ${IN_PRODUCTION}` : ""}, got "${raw}"`,
    );
    return fallback;
  }
  if (url.search !== "" || url.hash !== "") {
    r.problems.push(`${name} must not have a query string or fragment, got "${raw}"`);
    return fallback;
  }
  return raw.replace(/\/+$/, "");
}
