import { phoneFactsOf } from "../phone/facts.js";

/** Where an SMS would go, as the SMS-pumping caps count it. */
export interface Destination {
  /** ISO 3166 region ("IN"), undefined for non-geographic numbers (+800, +882, …). */
  readonly country: string | undefined;
  /** The country calling code, without "+" ("91"). */
  readonly callingCode: string;
  /** The number without its last 4 digits ("+91987654"): pumping walks through a provider's ranges. */
  readonly prefix: string;
}

/** Reads destinations of E.164 numbers; the number was normally just normalised, so nothing is parsed again. */
export class Destinations {
  of(e164: string): Destination {
    const { country, callingCode } = phoneFactsOf(e164);
    return { country, callingCode, prefix: e164.slice(0, -4) };
  }
}
