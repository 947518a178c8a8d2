import { createHash, timingSafeEqual } from "node:crypto";
import { Code, ConnectError, type HandlerContext } from "@connectrpc/connect";

/** One audit event as the feed hands it over. */
export interface AuditFeedRecord {
  readonly id: string;
  readonly timeMs: number;
  readonly event: string;
  readonly verificationId: string;
  readonly userId: string;
  readonly phone: string;
  readonly clientIp: string;
  readonly reason: string;
}

/** Where WatchAuditEvents reads from: the audit log's store (a Redis Stream, or the embedded ring). */
export interface AuditFeed {
  watch(fromId: string, signal: AbortSignal): AsyncIterable<AuditFeedRecord>;
}

export interface AuditWatchSettings {
  readonly feed: AuditFeed;
  /** AUDIT_TOKEN; undefined turns the RPC off (unimplemented). */
  readonly token: string | undefined;
  readonly maxWatchers: number;
}

const FROM_ID = /^(|0|\d{1,20}-\d{1,20})$/;

/**
 * WatchAuditEvents: only for internal services holding AUDIT_TOKEN (compared in constant time, as digests so
 * the length leaks nothing either), and only so many at once, since each holds a Redis connection.
 */
export function auditWatcher(settings: AuditWatchSettings | undefined) {
  let watchers = 0;
  const expected = settings?.token === undefined ? undefined : digest(settings.token);
  return async function* watch(fromId: string, ctx: HandlerContext): AsyncIterable<AuditFeedRecord> {
    if (!settings || expected === undefined) {
      throw new ConnectError("the audit stream is not enabled on this server", Code.Unimplemented);
    }
    const header = ctx.requestHeader.get("authorization") ?? "";
    const presented = /^Bearer (.+)$/i.exec(header)?.[1] ?? "";
    if (!timingSafeEqual(digest(presented), expected)) {
      throw new ConnectError("a valid audit token is required", Code.Unauthenticated);
    }
    if (!FROM_ID.test(fromId)) {
      throw new ConnectError(
        'from_id must be a stream id such as "1700000000000-0", "0" or empty',
        Code.InvalidArgument,
      );
    }
    if (watchers >= settings.maxWatchers) {
      throw new ConnectError("too many audit watchers; try again later", Code.ResourceExhausted);
    }
    watchers += 1;
    try {
      yield* settings.feed.watch(fromId, ctx.signal);
    } finally {
      watchers -= 1;
    }
  };
}

function digest(token: string): Buffer {
  return createHash("sha256").update(token).digest();
}
