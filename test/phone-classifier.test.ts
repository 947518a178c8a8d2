import fc from "fast-check";
import {
  type CountryCode,
  getCountries,
  getCountryCallingCode,
  getExampleNumber,
  parsePhoneNumberWithError,
} from "libphonenumber-js/max";
import examples from "libphonenumber-js/mobile/examples";
import { describe, expect, it } from "vitest";
import { E164Classifier } from "../src/phone/e164-classifier.js";
import { PhoneNormalizer } from "../src/phone/normalize.js";

const classifier = new E164Classifier();

/** What libphonenumber itself says of an input, in the classifier's terms; undefined where it refuses. */
function library(input: string) {
  try {
    const parsed = parsePhoneNumberWithError(input, "IN");
    return {
      e164: parsed.number,
      region: parsed.country,
      callingCode: parsed.countryCallingCode,
      nationalNumber: parsed.nationalNumber,
      type: parsed.getType(),
    };
  } catch {
    return undefined;
  }
}

const regions = getCountries();
const mobileExample = (region: CountryCode) => getExampleNumber(region, examples)?.nationalNumber ?? "";

/**
 * "+<calling code><national digits>" near real numbers: a region's example mobile with its last digits
 * replaced by any digits, one fewer or one more at times. Most are valid numbers of some type, some are not.
 */
const nearRealNumbers = fc
  .record({
    region: fc.constantFrom(...regions),
    replaced: fc.nat({ max: 6 }),
    lengthChange: fc.constantFrom(-1, 0, 0, 0, 1),
    digits: fc.stringMatching(/^[0-9]{7}$/),
  })
  .map(({ region, replaced, lengthChange, digits }) => {
    const example = mobileExample(region);
    const kept = example.slice(0, Math.max(0, example.length - replaced));
    const tail = digits.slice(0, Math.max(0, replaced + lengthChange));
    return `+${getCountryCallingCode(region)}${kept}${tail}`;
  });

/**
 * A real calling code, then what a national prefix or a carrier code looks like (0, 06, 8, 15…) before a
 * mobile's digits, or short digits alone: where libphonenumber strips or rewrites the start of the number.
 */
const prefixedNumbers = fc
  .record({
    region: fc.constantFrom(...regions),
    prefix: fc.stringMatching(/^[0-9]{0,3}$/),
    digits: fc.stringMatching(/^[0-9]{4,12}$/),
    fromExample: fc.boolean(),
  })
  .map(({ region, prefix, digits, fromExample }) => {
    const rest = fromExample ? mobileExample(region) : digits;
    return `+${getCountryCallingCode(region)}${prefix}${rest}`;
  });

/** "+" and any digits: calling codes that do not exist, national numbers of any length. */
const anyDigits = fc.stringMatching(/^\+[0-9]{1,20}$/);

describe("the E.164 classifier", () => {
  it("property: every answer it gives is libphonenumber's", () => {
    let answered = 0;
    fc.assert(
      fc.property(fc.oneof(nearRealNumbers, prefixedNumbers, anyDigits), (input) => {
        const answer = classifier.classify(input);
        if (answer === undefined) return;
        answered += 1;
        expect(answer).toEqual(library(input));
      }),
      { numRuns: 30_000 },
    );
    // Not a property that holds by answering nothing.
    expect(answered).toBeGreaterThan(4_000);
  });

  it("answers libphonenumber's for every region's example mobile, and answers for most of them", () => {
    let answered = 0;
    for (const region of regions) {
      const input = `+${getCountryCallingCode(region)}${mobileExample(region)}`;
      const answer = classifier.classify(input);
      if (answer === undefined) continue;
      answered += 1;
      expect(answer, region).toEqual(library(input));
    }
    expect(answered).toBeGreaterThan(regions.length / 2);
  });

  it("answers for Indian mobiles and landlines without libphonenumber's parse", () => {
    expect(classifier.classify("+919876543210")).toEqual({
      e164: "+919876543210",
      region: "IN",
      callingCode: "91",
      nationalNumber: "9876543210",
      type: "MOBILE",
    });
    expect(classifier.classify("+912223456789")?.type).toBe("FIXED_LINE");
  });

  it.each([
    ["a shared calling code (+1: the US, Canada and the Caribbean)", "+12015550123"],
    ["a shared calling code (+44: the UK and the Crown Dependencies)", "+447911123456"],
    // libphonenumber strips Belarus's national prefix 8 here and reads +375 105250393; read whole, the
    // digits would be a premium-rate number.
    ["a national prefix after the calling code", "+3758105250393"],
    ["a non-geographic calling code", "+80012345678"],
    ["formatting", "+91 98765 43210"],
    ["no calling code", "9876543210"],
    ["a calling code that does not exist", "+99912345678"],
    ["a number no type matches", "+9112345"],
  ])("leaves %s to libphonenumber", (_what, input) => {
    expect(classifier.classify(input)).toBeUndefined();
  });

  it("gives the normaliser the same refusal as libphonenumber's path", () => {
    const phones = new PhoneNormalizer("IN");
    expect(() => phones.parse("+912223456789")).toThrow(/fixed line number and cannot receive SMS/);
    expect(() => phones.parse("+91 22 2345 6789")).toThrow(/fixed line number and cannot receive SMS/);
    expect(phones.parse("+919876543210")).toEqual(phones.parse("+91 98765 43210"));
  });
});
