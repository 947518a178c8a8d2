import fc from "fast-check";
import { describe, expect, it } from "vitest";
import { codeDigest, generateCode, isCodeShaped } from "../src/login/code.js";

const length = fc.integer({ min: 4, max: 10 });
const phone = fc.stringMatching(/^\+[1-9][0-9]{7,14}$/);
const secret = fc.uint8Array({ minLength: 16, maxLength: 64 }).map((b) => Buffer.from(b));
// Mostly digits, so that well-shaped strings come up often, plus look-alikes that must be refused.
const nearDigit = fc.constantFrom(..."0123456789", " ", "\n", "-", "a", "١", "１", "\u{1D7CE}");
const digit = fc.constantFrom(..."0123456789");
const codeOf = (n: number) => fc.string({ unit: digit, minLength: n, maxLength: n });

describe("generateCode", () => {
  it("property: always the configured number of ASCII digits, for every length 4..10", () => {
    fc.assert(
      fc.property(length, (n) => {
        const code = generateCode(n);
        expect(code).toMatch(new RegExp(`^[0-9]{${n}}$`));
        expect(isCodeShaped(code, n)).toBe(true);
      }),
      { numRuns: 500 },
    );
  });

  it("refuses lengths outside 4..10", () => {
    for (const n of [3, 11, 0, -6, 6.5, Number.NaN]) expect(() => generateCode(n)).toThrow(RangeError);
  });

  it("keeps leading zeros and spreads digits evenly", () => {
    // A chi-square over 10,000 first digits: a code that dropped leading zeros, or picked digits with a bias,
    // fails far beyond this bound, while a fair generator exceeds it about once in ten million runs.
    const samples = 10_000;
    const counts = new Array<number>(10).fill(0);
    for (let i = 0; i < samples; i++) {
      const digit = Number(generateCode(4).charAt(0));
      counts[digit] = (counts[digit] ?? 0) + 1;
    }
    const expected = samples / 10;
    const chiSquare = counts.reduce((sum, c) => sum + (c - expected) ** 2 / expected, 0);
    expect(counts[0]).toBeGreaterThan(0);
    expect(chiSquare).toBeLessThan(50);
  });
});

describe("codeDigest", () => {
  it("matches a known HMAC-SHA256 of phone, newline, code in base64url", () => {
    // Computed independently: printf '+919876543210\n123456' | openssl dgst -sha256 -hmac test-secret -binary
    const expected = "K21GogtlJlnUaAhlT5uUszGIsnmIObjmK9tLYUF_Qn4";
    expect(codeDigest("test-secret", "+919876543210", "123456")).toBe(expected);
    expect(codeDigest(Buffer.from("test-secret"), "+919876543210", "123456")).toBe(expected);
  });

  it("property: deterministic, and base64url of 32 bytes", () => {
    fc.assert(
      fc.property(secret, phone, codeOf(6), (s, p, c) => {
        const d = codeDigest(s, p, c);
        expect(codeDigest(Buffer.from(s), p, c)).toBe(d);
        expect(d).toMatch(/^[A-Za-z0-9_-]{43}$/);
      }),
      { numRuns: 200 },
    );
  });

  it("property: different codes give different digests", () => {
    fc.assert(
      fc.property(
        secret,
        phone,
        length.chain((n) => fc.uniqueArray(codeOf(n), { minLength: 2, maxLength: 2 })),
        (s, p, [a = "", b = ""]) => {
          expect(codeDigest(s, p, a)).not.toBe(codeDigest(s, p, b));
        },
      ),
      { numRuns: 200 },
    );
  });

  it("property: different phones give different digests for the same code", () => {
    fc.assert(
      fc.property(
        secret,
        fc.uniqueArray(phone, { minLength: 2, maxLength: 2 }),
        codeOf(6),
        (s, [p = "", q = ""], c) => {
          expect(codeDigest(s, p, c)).not.toBe(codeDigest(s, q, c));
        },
      ),
      { numRuns: 200 },
    );
  });

  it("does not let digits slide between phone and code", () => {
    expect(codeDigest("k", "+1", "23456")).not.toBe(codeDigest("k", "+12", "3456"));
  });

  it("depends on the secret", () => {
    expect(codeDigest("one secret", "+919876543210", "123456")).not.toBe(
      codeDigest("another secret", "+919876543210", "123456"),
    );
  });
});

describe("isCodeShaped", () => {
  it("accepts exactly `length` ASCII digits", () => {
    expect(isCodeShaped("012345", 6)).toBe(true);
    expect(isCodeShaped("0000", 4)).toBe(true);
  });

  it("rejects wrong lengths, signs, spaces and non-ASCII digits", () => {
    for (const code of [
      "12345",
      "1234567",
      "12345a",
      " 12345",
      "12345\n",
      "-12345",
      "1e5000",
      "１２３４５６",
      "١٢٣٤٥٦",
    ]) {
      expect(isCodeShaped(code, 6), code).toBe(false);
    }
  });

  it("property: a string is shaped exactly when it is `length` characters of 0-9", () => {
    fc.assert(
      fc.property(fc.string({ unit: nearDigit, maxLength: 12 }), length, (s, n) => {
        expect(isCodeShaped(s, n)).toBe(/^[0-9]*$/.test(s) && s.length === n);
      }),
      { numRuns: 500 },
    );
  });
});
