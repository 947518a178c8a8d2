import fc from "fast-check";
import { describe, expect, it } from "vitest";
import { LoginError } from "../src/login/reasons.js";
import { PhoneNormalizer } from "../src/phone/normalize.js";

const phones = new PhoneNormalizer("IN");

function refusal(input: string): LoginError {
  try {
    phones.normalize(input);
  } catch (err) {
    if (err instanceof LoginError) return err;
    throw err;
  }
  throw new Error(`"${input}" was accepted`);
}

describe("phone normalisation", () => {
  it.each([
    "+919876543210",
    "98765 43210",
    "+91 98765-43210",
    "0091 98765 43210",
    "09876543210",
    "(+91) 98765.43210",
  ])("%s means +919876543210", (input) => {
    expect(phones.normalize(input)).toBe("+919876543210");
  });

  it("keeps other countries' numbers when given in international form", () => {
    expect(phones.normalize("+44 7911 123456")).toBe("+447911123456");
    expect(new PhoneNormalizer("GB").normalize("07911 123456")).toBe("+447911123456");
  });

  it.each([
    ["", /phone is required/],
    ["12", /not a valid number/],
    ["+91 12345", /not a valid number/],
    ["call me", /may contain only digits/],
    ["+91 22 2345 6789", /fixed line number and cannot receive SMS/],
    ["9".repeat(40), /too long/],
  ])("refuses %j with InvalidArgument naming the problem", (input, message) => {
    const err = refusal(input);
    expect(err.kind).toBe("invalid_argument");
    expect(err.message).toMatch(message);
  });

  it("property: any spacing and dashes of a valid Indian mobile normalise to the same E.164", () => {
    fc.assert(
      fc.property(
        fc.constantFrom("6", "7", "8", "9"),
        fc.stringMatching(/^[0-9]{9}$/),
        fc.array(fc.constantFrom(" ", "-", ""), { minLength: 10, maxLength: 10 }),
        fc.constantFrom("", "+91", "+91 ", "0"),
        (first, rest, seps, prefix) => {
          const digits = first + rest;
          let e164: string;
          try {
            e164 = phones.normalize(`+91${digits}`);
          } catch {
            return; // not every range is allocated; the property is about formatting, not allocation
          }
          const formatted = prefix + [...digits].map((d, i) => d + (seps[i] ?? "")).join("");
          expect(phones.normalize(formatted)).toBe(e164);
        },
      ),
      { numRuns: 200 },
    );
  });

  it("property: arbitrary input never throws anything but a LoginError", () => {
    fc.assert(
      fc.property(fc.string({ maxLength: 40 }), (s) => {
        try {
          expect(phones.normalize(s)).toMatch(/^\+\d{8,15}$/);
        } catch (err) {
          expect(err).toBeInstanceOf(LoginError);
        }
      }),
    );
  });
});
