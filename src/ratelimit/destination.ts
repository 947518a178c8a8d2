import { parsePhoneNumberWithError } from "libphonenumber-js/max";

/** Where an SMS would go, as the SMS-pumping caps count it. */
export interface Destination {
  /** ISO 3166 region ("IN"), undefined for non-geographic numbers (+800, +882, …). */
  readonly country: string | undefined;
  /** The country calling code, without "+" ("91"). */
  readonly callingCode: string;
  /** The number without its last 4 digits ("+91987654"): pumping walks through a provider's ranges. */
  readonly prefix: string;
}

/** Reads destinations of E.164 numbers, with a small cache (parsing costs ~30 µs; verifies follow sends). */
export class Destinations {
  readonly #cache = new Map<string, Destination>();

  constructor(private readonly cacheSize = 10_000) {}

  of(e164: string): Destination {
    const cached = this.#cache.get(e164);
    if (cached) return cached;
    const parsed = parsePhoneNumberWithError(e164);
    const destination: Destination = {
      country: parsed.country,
      callingCode: parsed.countryCallingCode,
      prefix: e164.slice(0, -4),
    };
    if (this.#cache.size >= this.cacheSize) this.#cache.clear();
    this.#cache.set(e164, destination);
    return destination;
  }
}
