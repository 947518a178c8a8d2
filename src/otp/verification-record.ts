import type { SendAttempt, StoredVerification, VerificationStatus } from "../login/ports.js";

const STATUSES: readonly VerificationStatus[] = [
  "pending",
  "approved",
  "canceled",
  "expired",
  "max_attempts_reached",
  "failed_to_send",
];

/**
 * A verification record as both stores keep it: short keys, since each is rewritten by the scripts that
 * check codes. `{c: created ms, x: newest code's expiry ms, s: status, n: checks used, m: masked phone,
 * t: [{p: provider, i: message id, t: sent ms, d: delivery status, e: error code}]}`.
 */
export interface RecordJson {
  c: number;
  x: number;
  s: string;
  n: number;
  m: string;
  t: AttemptJson[] | Record<string, never>;
}

export interface AttemptJson {
  p: string;
  i: string;
  t: number;
  d: string;
  e: string;
}

/** Parses a stored record; a record that does not parse is a bug, not "not found", so it throws. */
export function parseRecord(id: string, phone: string, raw: string): StoredVerification {
  const r = JSON.parse(raw) as Partial<RecordJson>;
  const status = STATUSES.find((s) => s === r.s);
  if (status === undefined || typeof r.c !== "number" || typeof r.x !== "number") {
    throw new Error(`malformed verification record ${id}`);
  }
  // cjson writes an empty list as {}.
  const attempts = Array.isArray(r.t) ? r.t : [];
  return {
    id,
    phone,
    maskedPhone: String(r.m ?? ""),
    status,
    createdAtMs: r.c,
    expiresAtMs: r.x,
    attemptsUsed: Number(r.n ?? 0),
    sendAttempts: attempts.map(
      (a): SendAttempt => ({
        provider: String(a.p ?? ""),
        messageId: String(a.i ?? ""),
        sentAtMs: Number(a.t ?? 0),
        deliveryStatus: String(a.d ?? ""),
        errorCode: String(a.e ?? ""),
      }),
    ),
  };
}
