import { parsePhoneNumberWithError } from "libphonenumber-js/max";

/** What the number itself says about where an SMS to it goes. */
export interface PhoneFacts {
  /** ISO 3166 region ("IN"); undefined for non-geographic numbers (+800, +882, …). */
  readonly country: string | undefined;
  /** The country calling code, without "+" ("91"). */
  readonly callingCode: string;
}

// Parsing costs ~30 µs. Normalising a request's phone already parsed it, so the facts are kept here for the
// rest of the request (the SMS-pumping caps) instead of parsing the same number a second time.
const cache = new Map<string, PhoneFacts>();
const CACHE_SIZE = 10_000;

export function rememberPhoneFacts(e164: string, facts: PhoneFacts): void {
  if (cache.size >= CACHE_SIZE) cache.clear();
  cache.set(e164, facts);
}

/** The facts of an E.164 number: from the cache when the number was just normalised, else parsed. */
export function phoneFactsOf(e164: string): PhoneFacts {
  const cached = cache.get(e164);
  if (cached) return cached;
  const parsed = parsePhoneNumberWithError(e164);
  const facts = { country: parsed.country, callingCode: parsed.countryCallingCode };
  rememberPhoneFacts(e164, facts);
  return facts;
}
