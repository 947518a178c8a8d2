import type { CountryCode } from "libphonenumber-js/max";
import { parsePhoneNumberWithError } from "libphonenumber-js/max";
import type { Phone } from "../login/model.js";
import type { PhoneParser } from "../login/ports.js";
import { invalidPhone as invalid } from "../login/reasons.js";
import { E164Classifier } from "./e164-classifier.js";

/**
 * Turns what a user typed ("98765 43210", "+91 98765-43210", "0091 9876543210") into E.164, or refuses it
 * with a message naming the problem. The full ("max") metadata is used because it knows number ranges and
 * types: a landline cannot receive an SMS, and telling the user now is better than a provider error later.
 */
export class PhoneNormalizer implements PhoneParser {
  // libphonenumber's parse costs ~20-30 µs (E.164 input ~1 µs, see E164Classifier); a verify follows every
  // send of the same input, so a small cache pays for itself.
  readonly #cache = new Map<string, Phone>();
  readonly #e164 = new E164Classifier();

  constructor(
    private readonly defaultCountry: string,
    private readonly cacheSize = 10_000,
  ) {}

  parse(input: string): Phone {
    const cached = this.#cache.get(input);
    if (cached !== undefined) return cached;
    const phone = this.#parse(input);
    if (this.#cache.size >= this.cacheSize) this.#cache.clear();
    this.#cache.set(input, phone);
    return phone;
  }

  /** The E.164 form alone. */
  normalize(input: string): string {
    return this.parse(input).e164;
  }

  #parse(input: string): Phone {
    const raw = input.trim();
    if (raw === "") throw invalid("phone is required");
    if (raw.length > 32) throw invalid("phone is too long to be a phone number");
    if (!/^[+\d\s().-]+$/.test(raw)) {
      throw invalid(`phone "${raw}" may contain only digits, spaces, "+", "-", "(", ")" and "."`);
    }
    const { e164, region, callingCode, nationalNumber, type } =
      this.#e164.classify(raw) ?? this.#parseWithLibrary(raw);
    if (type === "FIXED_LINE" || type === "TOLL_FREE" || type === "PREMIUM_RATE" || type === "SHARED_COST") {
      throw invalid(
        `phone "${raw}" is a ${type.toLowerCase().replaceAll("_", " ")} number and cannot receive SMS`,
      );
    }
    return Object.freeze({ e164, region, callingCode, nationalNumber, type });
  }

  /** Any input libphonenumber reads; refuses what it cannot read or finds invalid. */
  #parseWithLibrary(raw: string): Phone {
    let parsed: ReturnType<typeof parsePhoneNumberWithError>;
    try {
      parsed = parsePhoneNumberWithError(raw, this.defaultCountry as CountryCode);
    } catch (err) {
      const reason = err instanceof Error ? err.message : String(err);
      throw invalid(`phone "${raw}" is not a phone number (${reason.toLowerCase().replaceAll("_", " ")})`);
    }
    // `getType()` is what `isValid()` computes (a walk over every type's number pattern), so one call answers
    // both; `isValid()` is asked only when there is no type, which costs the refusal, not the common path.
    const type = parsed.getType();
    if (type === undefined && !parsed.isValid()) {
      throw invalid(
        `phone "${raw}" is not a valid number${parsed.country ? ` for ${parsed.country}` : ""}; use E.164 such as +919876543210`,
      );
    }
    return {
      e164: parsed.number,
      region: parsed.country,
      callingCode: parsed.countryCallingCode,
      nationalNumber: parsed.nationalNumber,
      type,
    };
  }
}
