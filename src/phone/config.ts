import type { EnvReader } from "../env-reader.js";

/** DEFAULT_COUNTRY: the region of numbers typed without a country code. */
export function readDefaultCountry(r: EnvReader): string {
  const country = r.string("DEFAULT_COUNTRY", "IN").toUpperCase();
  if (!/^[A-Z]{2}$/.test(country)) {
    r.problems.push(`DEFAULT_COUNTRY must be a two-letter ISO 3166 region code such as IN, got "${country}"`);
  }
  return country;
}
