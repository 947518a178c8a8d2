import { createHash, randomBytes } from "node:crypto";
import fc from "fast-check";
import { describe, expect, it } from "vitest";
import { mintRefreshToken, parseRefreshToken, successorRefreshToken } from "../src/login/refresh-token.js";

const sha256 = (s: string) => createHash("sha256").update(s).digest("base64url");
const B64URL = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_";

describe("refresh token format", () => {
  it("parses every minted token back to the ref it was minted with", () => {
    fc.assert(
      fc.property(fc.maxSafeNat(), fc.boolean(), (userId, rotation) => {
        const family = rotation ? mintRefreshToken(userId).ref.family : undefined;
        const { token, ref } = mintRefreshToken(userId, family);
        expect(parseRefreshToken(token)).toEqual(ref);
        expect(ref.hash).toBe(sha256(token));
        if (family) expect(ref.family).toBe(family);
      }),
    );
  });

  it("is <userId>.<16 random bytes>.<32 random bytes>, a new family per login", () => {
    const a = mintRefreshToken(7);
    const b = mintRefreshToken(7);
    expect(a.token).toMatch(/^7\.[A-Za-z0-9_-]{22}\.[A-Za-z0-9_-]{43}$/);
    expect(a.ref.family).not.toBe(b.ref.family);
    expect(a.token.split(".")[2]).not.toBe(b.token.split(".")[2]);
  });

  it("never throws on arbitrary input, and anything it accepts is hashed as given", () => {
    const check = (input: string) => {
      const ref = parseRefreshToken(input);
      if (ref === undefined) return;
      expect(ref.hash).toBe(sha256(input));
      expect(input.startsWith(`${ref.userId}.${ref.family}.`)).toBe(true);
    };
    fc.assert(fc.property(fc.string({ unit: "binary", maxLength: 200 }), check), { numRuns: 2000 });

    const mutation = fc.oneof(
      fc.record({
        op: fc.constant("replace" as const),
        at: fc.nat(),
        char: fc.string({ unit: "binary", minLength: 1, maxLength: 1 }),
      }),
      fc.record({
        op: fc.constant("insert" as const),
        at: fc.nat(),
        char: fc.constantFrom(...B64URL, ".", "=", "+", "/", " "),
      }),
      fc.record({ op: fc.constant("delete" as const), at: fc.nat(), char: fc.constant("") }),
    );
    fc.assert(
      fc.property(
        fc.maxSafeNat(),
        fc.array(mutation, { minLength: 1, maxLength: 3 }),
        (userId, mutations) => {
          let token = mintRefreshToken(userId).token;
          for (const { op, at, char } of mutations) {
            const i = at % (token.length + 1);
            token = token.slice(0, i) + char + token.slice(op === "insert" ? i : i + 1);
          }
          check(token);
        },
      ),
      { numRuns: 2000 },
    );
  });

  it("rejects every malformed spelling", () => {
    const { token, ref } = mintRefreshToken(42);
    const [, family = "", secret = ""] = token.split(".");
    // The last character of the family carries 2 bits and the secret's 4; flipping an unused bit
    // decodes to the same bytes, a second spelling we refuse.
    const flipLast = (s: string, bit: number) =>
      s.slice(0, -1) + B64URL[B64URL.indexOf(s.at(-1) ?? "A") ^ bit];
    const bad = [
      "",
      "42",
      `42.${family}`,
      `042.${family}.${secret}`,
      `-42.${family}.${secret}`,
      `+42.${family}.${secret}`,
      `4.2.${family}.${secret}`,
      `9007199254740993.${family}.${secret}`,
      `42.${family}.${secret}.`,
      `42.${family}.${secret}=`,
      `42.${family}.${secret} `,
      ` ${token}`,
      `42.${family.slice(1)}.${secret}`,
      `42.${family}A.${secret}`,
      `42.${family}.${secret.slice(1)}`,
      `42.${family.replace(/./, "+")}.${secret}`,
      `42.${family}.${secret.replace(/./, "/")}`,
      `42.${flipLast(family, 1)}.${secret}`,
      `42.${family}.${flipLast(secret, 1)}`,
      token.repeat(2),
      "9".repeat(10_000),
    ];
    for (const input of bad) expect(parseRefreshToken(input), input).toBeUndefined();
    expect(parseRefreshToken(token)).toEqual(ref);
    expect(parseRefreshToken(undefined as unknown as string)).toBeUndefined();
  });

  it("refuses to mint for an impossible user or into a malformed family", () => {
    for (const id of [-1, 1.5, Number.NaN, 2 ** 53]) expect(() => mintRefreshToken(id)).toThrow(RangeError);
    for (const family of ["", "short", "A".repeat(23), `${"A".repeat(21)}B`, `${"A".repeat(21)}+`]) {
      expect(() => mintRefreshToken(1, family)).toThrow(TypeError);
    }
  });
});

describe("a token's successor", () => {
  const key = randomBytes(32);

  it("is one well-formed token of the same user and family, the same every time it is asked for", () => {
    fc.assert(
      fc.property(fc.maxSafeNat(), (userId) => {
        const { token } = mintRefreshToken(userId);
        const next = successorRefreshToken(token, key);
        expect(parseRefreshToken(next.token)).toEqual(next.ref);
        expect(next.ref).toMatchObject({ userId, family: parseRefreshToken(token)?.family });
        expect(next.token).not.toBe(token);
        expect(successorRefreshToken(token, key)).toEqual(next);
        // A chain, not a cycle: the successor's successor is a third token.
        expect(successorRefreshToken(next.token, key).token).not.toBe(token);
      }),
    );
  });

  it("depends on the key and on every part of the token", () => {
    const { token } = mintRefreshToken(7);
    const next = successorRefreshToken(token, key).token;
    expect(successorRefreshToken(token, randomBytes(32)).token).not.toBe(next);
    const other = mintRefreshToken(7, parseRefreshToken(token)?.family).token;
    expect(successorRefreshToken(other, key).token.split(".")[2]).not.toBe(next.split(".")[2]);
  });

  it("refuses a short key and anything that is not a token", () => {
    const { token } = mintRefreshToken(1);
    expect(() => successorRefreshToken(token, randomBytes(16))).toThrow(RangeError);
    expect(() => successorRefreshToken(`${token} `, key)).toThrow(TypeError);
  });
});
