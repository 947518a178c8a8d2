import type { AuditEntry } from "../login/ports.js";

/** One stored audit event: the entry, its stream id and time, every field a string as the stream keeps it. */
export interface AuditRecord {
  /** "<ms>-<seq>", a Redis stream id in both stores, so a watcher resumes the same way from either. */
  readonly id: string;
  readonly timeMs: number;
  readonly event: string;
  readonly verificationId: string;
  readonly userId: string;
  readonly phone: string;
  readonly clientIp: string;
  readonly reason: string;
}

/** The stream's field list for an entry: short names, only the fields that are set. */
export function fieldsOf(entry: AuditEntry, timeMs: number): string[] {
  const fields = ["t", String(timeMs), "e", entry.event];
  const add = (name: string, value: string | number | undefined) => {
    if (value !== undefined && value !== "") fields.push(name, String(value));
  };
  add("v", entry.verificationId);
  add("u", entry.userId);
  add("p", entry.phone);
  add("ip", entry.clientIp);
  add("r", entry.reason);
  return fields;
}

export function recordOf(id: string, fields: readonly string[]): AuditRecord {
  const map = new Map<string, string>();
  for (let i = 0; i + 1 < fields.length; i += 2) map.set(fields[i] ?? "", fields[i + 1] ?? "");
  const get = (name: string) => map.get(name) ?? "";
  return {
    id,
    timeMs: Number(get("t")) || 0,
    event: get("e"),
    verificationId: get("v"),
    userId: get("u"),
    phone: get("p"),
    clientIp: get("ip"),
    reason: get("r"),
  };
}

/** Orders "<ms>-<seq>" ids; "" and "0" sort first. */
export function compareIds(a: string, b: string): number {
  const [am = 0, as = 0] = a.split("-").map(Number);
  const [bm = 0, bs = 0] = b.split("-").map(Number);
  return am !== bm ? am - bm : as - bs;
}
