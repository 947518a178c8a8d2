import type { CountryCode } from "libphonenumber-js/max";
import { parsePhoneNumberWithError } from "libphonenumber-js/max";
import { LoginError } from "../login/errors.js";
import { rememberPhoneFacts } from "./facts.js";

/**
 * Turns what a user typed ("98765 43210", "+91 98765-43210", "0091 9876543210") into E.164, or refuses it
 * with a message naming the problem. The full ("max") metadata is used because it knows number ranges and
 * types: a landline cannot receive an SMS, and telling the user now is better than a provider error later.
 */
export class PhoneNormalizer {
  // Parsing costs ~30 µs; a verify follows every send of the same input, so a small cache pays for itself.
  readonly #cache = new Map<string, string>();

  constructor(
    private readonly defaultCountry: string,
    private readonly cacheSize = 10_000,
  ) {}

  normalize(input: string): string {
    const cached = this.#cache.get(input);
    if (cached !== undefined) return cached;
    const e164 = this.#parse(input);
    if (this.#cache.size >= this.cacheSize) this.#cache.clear();
    this.#cache.set(input, e164);
    return e164;
  }

  #parse(input: string): string {
    const raw = input.trim();
    if (raw === "") throw invalid("phone is required");
    if (raw.length > 32) throw invalid("phone is too long to be a phone number");
    if (!/^[+\d\s().-]+$/.test(raw)) {
      throw invalid(`phone "${raw}" may contain only digits, spaces, "+", "-", "(", ")" and "."`);
    }
    let parsed: ReturnType<typeof parsePhoneNumberWithError>;
    try {
      parsed = parsePhoneNumberWithError(raw, this.defaultCountry as CountryCode);
    } catch (err) {
      const reason = err instanceof Error ? err.message : String(err);
      throw invalid(`phone "${raw}" is not a phone number (${reason.toLowerCase().replaceAll("_", " ")})`);
    }
    if (!parsed.isValid()) {
      throw invalid(
        `phone "${raw}" is not a valid number${parsed.country ? ` for ${parsed.country}` : ""}; use E.164 such as +919876543210`,
      );
    }
    const type = parsed.getType();
    if (type === "FIXED_LINE" || type === "TOLL_FREE" || type === "PREMIUM_RATE" || type === "SHARED_COST") {
      throw invalid(
        `phone "${raw}" is a ${type.toLowerCase().replaceAll("_", " ")} number and cannot receive SMS`,
      );
    }
    rememberPhoneFacts(parsed.number, { country: parsed.country, callingCode: parsed.countryCallingCode });
    return parsed.number;
  }
}

function invalid(message: string): LoginError {
  return new LoginError("invalid_argument", message, undefined, "INVALID_PHONE");
}
