import fc from "fast-check";
import { describe, expect, it } from "vitest";
import { randomBase64url, randomHex } from "../src/login/random-pool.js";

describe("the id pool hands out CSPRNG bytes once each", () => {
  it("gives the asked length in the asked encoding, across refills of its block", () => {
    fc.assert(
      fc.property(fc.array(fc.integer({ min: 1, max: 64 }), { minLength: 1, maxLength: 300 }), (sizes) => {
        for (const n of sizes) {
          expect(randomHex(n)).toMatch(new RegExp(`^[0-9a-f]{${2 * n}}$`));
          expect(Buffer.from(randomBase64url(n), "base64url")).toHaveLength(n);
        }
      }),
    );
  });

  it("never repeats a 16-byte id, over many blocks", () => {
    const seen = new Set<string>();
    // 20 000 ids are ~80 blocks of 4 KiB; a byte handed out twice would repeat an id within a block.
    for (let i = 0; i < 20_000; i++) seen.add(randomHex(16));
    expect(seen.size).toBe(20_000);
  });

  it("refuses to hand out more than one block at a time", () => {
    expect(() => randomHex(4097)).toThrow(RangeError);
  });
});
