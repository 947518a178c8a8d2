import type { EnvReader } from "../env-reader.js";

export interface AuditConfig {
  /** XADD MAXLEN ~ on Redis; the embedded ring keeps at most `memoryEvents`. */
  readonly maxLen: number;
  /** How long the Redis stream keeps an event, and keeps itself after the last one. */
  readonly retentionMs: number;
  readonly memoryEvents: number;
  /** The bearer token WatchAuditEvents requires; unset: the RPC answers unimplemented. */
  readonly token: string | undefined;
  /** Watchers at once: each holds a Redis connection. */
  readonly maxWatchers: number;
}

/** AUDIT_STREAM_MAXLEN, AUDIT_STREAM_RETENTION_DAYS, AUDIT_TOKEN (or AUDIT_TOKEN_FILE) and AUDIT_MAX_WATCHERS. */
export function readAuditConfig(r: EnvReader): AuditConfig {
  const maxLen = r.int("AUDIT_STREAM_MAXLEN", 1_000_000, 1, 1_000_000_000);
  const token = r.secret("AUDIT_TOKEN");
  if (token !== undefined && token.length < 32) {
    r.problems.push("AUDIT_TOKEN must be at least 32 characters (e.g. `openssl rand -hex 32`)");
  }
  return {
    maxLen,
    retentionMs: r.int("AUDIT_STREAM_RETENTION_DAYS", 30, 1, 3650) * 86_400_000,
    memoryEvents: Math.min(maxLen, 10_000),
    token,
    maxWatchers: r.int("AUDIT_MAX_WATCHERS", 8, 1, 1000),
  };
}
