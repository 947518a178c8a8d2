/**
 * How many SMS segments a text costs. Carriers bill and may reorder per segment, and a multi-segment OTP
 * arrives later and is sometimes reassembled badly, so the default template is held to one segment.
 */

// The GSM 03.38 default alphabet (without ESC, which only introduces the extension table).
const GSM7_BASIC = new Set(
  "@£$¥èéùìòÇ\nØø\rÅåΔ_ΦΓΛΩΠΨΣΘΞÆæßÉ !\"#¤%&'()*+,-./0123456789:;<=>?¡ABCDEFGHIJKLMNOPQRSTUVWXYZÄÖÑÜ§¿abcdefghijklmnopqrstuvwxyzäöñüà",
);
// Characters from the extension table cost two septets (ESC + the character).
const GSM7_EXTENDED = new Set("\f^{}\\[~]|€");

export type SmsEncoding = "GSM-7" | "UCS-2";

export interface SmsSize {
  readonly encoding: SmsEncoding;
  /** Septets for GSM-7, UTF-16 code units for UCS-2. */
  readonly units: number;
  readonly segments: number;
}

export const GSM7_SINGLE_SEGMENT = 160;
const GSM7_MULTI_SEGMENT = 153;
const UCS2_SINGLE_SEGMENT = 70;
const UCS2_MULTI_SEGMENT = 67;

export function isGsm7(text: string): boolean {
  for (const ch of text) if (!GSM7_BASIC.has(ch) && !GSM7_EXTENDED.has(ch)) return false;
  return true;
}

export function measureSms(text: string): SmsSize {
  if (isGsm7(text)) {
    let units = 0;
    for (const ch of text) units += GSM7_EXTENDED.has(ch) ? 2 : 1;
    const segments = units <= GSM7_SINGLE_SEGMENT ? 1 : Math.ceil(units / GSM7_MULTI_SEGMENT);
    return { encoding: "GSM-7", units, segments };
  }
  // One character outside GSM-7 turns the whole message into UCS-2.
  const units = text.length;
  const segments = units <= UCS2_SINGLE_SEGMENT ? 1 : Math.ceil(units / UCS2_MULTI_SEGMENT);
  return { encoding: "UCS-2", units, segments };
}
