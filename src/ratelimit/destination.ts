import type { Phone } from "../login/model.js";

/** Where an SMS would go, as the SMS-pumping caps count it. */
export interface Destination {
  /** ISO 3166 region ("IN"), undefined for non-geographic numbers (+800, +882, …). */
  readonly country: string | undefined;
  /** The country calling code, without "+" ("91"). */
  readonly callingCode: string;
  /** The number without its last 4 digits ("+91987654"): pumping walks through a provider's ranges. */
  readonly prefix: string;
}

/** The destination of a parsed phone: the number already says it, nothing is parsed again. */
export function destinationOf(phone: Phone): Destination {
  return { country: phone.region, callingCode: phone.callingCode, prefix: phone.e164.slice(0, -4) };
}
