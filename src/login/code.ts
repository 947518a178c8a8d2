import { createHmac, randomInt } from "node:crypto";

const MIN_LENGTH = 4;
const MAX_LENGTH = 10;
const ZERO = 0x30;
const NINE = 0x39;

/**
 * A fresh code of `length` decimal digits, leading zeros included. One `randomInt` over the whole range
 * (10^10 is far below its 2^48 limit) keeps every code equally likely, with no per-digit modulo bias.
 */
export function generateCode(length: number): string {
  if (!Number.isInteger(length) || length < MIN_LENGTH || length > MAX_LENGTH) {
    throw new RangeError(`code length must be a whole number ${MIN_LENGTH}..${MAX_LENGTH}, got ${length}`);
  }
  return randomInt(10 ** length)
    .toString()
    .padStart(length, "0");
}

/**
 * The form a code is stored in: HMAC-SHA256 under a server secret, so a leaked store does not give the codes
 * away (a bare hash of a 6-digit code is reversed by trying all of them). The phone is bound in, so a digest
 * is worthless for any other number; the newline keeps ("+1", "23456") and ("+12", "3456") apart.
 */
export function codeDigest(secret: string | Buffer, phone: string, code: string): string {
  return createHmac("sha256", secret).update(`${phone}\n${code}`).digest("base64url");
}

/** Whether `code` is exactly `length` ASCII digits (not Unicode digits such as "٣", nor padded with spaces). */
export function isCodeShaped(code: string, length: number): boolean {
  if (code.length !== length) return false;
  for (let i = 0; i < code.length; i++) {
    const c = code.charCodeAt(i);
    if (c < ZERO || c > NINE) return false;
  }
  return true;
}
