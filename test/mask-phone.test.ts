import { describe, expect, it } from "vitest";
import { maskPhone } from "../src/log.js";
import { maskedPhone } from "../src/login/model.js";
import { PhoneNormalizer } from "../src/phone/normalize.js";

describe("masking a phone: one rule for every country", () => {
  const parser = new PhoneNormalizer("IN");
  const cases: [string, string][] = [
    ["+919876543210", "+91******3210"],
    ["+12015550123", "+1******0123"],
    ["+447911123456", "+44******3456"],
    ["+353851234567", "+353*****4567"],
    ["+8613812345678", "+86*******5678"],
    ["+4915112345678", "+49*******5678"],
    ["+971501234567", "+971*****4567"],
    ["+6591234567", "+65****4567"],
    ["+8823123456789", "+882******6789"],
  ];

  it("keeps the calling code and the last four digits, and hides every other digit", () => {
    for (const [e164, masked] of cases) {
      expect(maskPhone(e164), e164).toBe(masked);
      expect(maskedPhone(parser.parse(e164)), e164).toBe(masked);
    }
  });

  it("hides all of a string that is not a phone number", () => {
    expect(maskPhone("+12")).toBe("***");
    expect(maskPhone("not a phone")).toBe("*".repeat(11));
  });
});
