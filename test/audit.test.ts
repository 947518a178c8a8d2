import { type Client, Code, ConnectError, createClient } from "@connectrpc/connect";
import { createGrpcTransport } from "@connectrpc/connect-node";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { type AuditEvent, AuthService } from "../gen/auth/v1/auth_pb.js";
import { RedisAuditLog } from "../src/audit/redis-audit-log.js";
import { type RunningApp, startApp } from "./support/app.js";
import { uniquePhone } from "./support/capture-sms.js";
import { describeWithRedis, type TestRedis } from "./support/redis.js";
import { until } from "./support/wait.js";

const TOKEN = "a".repeat(40);
const bearer = { headers: { authorization: `Bearer ${TOKEN}` } };

/** Reads events from a WatchAuditEvents stream until `enough` says stop (or the call is aborted). */
async function collect(
  client: Client<typeof AuthService>,
  fromId: string,
  enough: (events: AuditEvent[]) => boolean,
): Promise<AuditEvent[]> {
  const events: AuditEvent[] = [];
  const abort = new AbortController();
  const timer = setTimeout(() => abort.abort(), 10_000);
  try {
    for await (const res of client.watchAuditEvents({ fromId }, { ...bearer, signal: abort.signal })) {
      if (res.event) events.push(res.event);
      if (enough(events)) break;
    }
  } finally {
    clearTimeout(timer);
  }
  return events;
}

function auditSuite(name: string, env: () => Record<string, string>, redis?: () => TestRedis) {
  describe(`audit stream (${name})`, () => {
    let s: RunningApp;
    let client: Client<typeof AuthService>;
    beforeAll(async () => {
      s = await startApp({ AUDIT_TOKEN: TOKEN, ...env() });
      client = createClient(AuthService, createGrpcTransport({ baseUrl: s.baseUrl }));
    });
    afterAll(() => s?.close());

    const login = async (phone: string) => {
      const sent = await s.app.login.sendOtp(phone, { ip: "203.0.113.5" });
      const code = s.sms.lastCode(phone);
      await s.app.login
        .verifyOtp(phone, code === "000000" ? "111111" : "000000", { ip: "203.0.113.5" })
        .catch(() => {});
      const session = await s.app.login.verifyOtp(phone, code, { ip: "203.0.113.5" });
      const rotated = await s.app.login.refresh(session.refreshToken);
      await s.app.login.refresh(session.refreshToken).catch(() => {});
      await s.app.login.logout(rotated.refreshToken);
      await s.app.login.settled();
      return { sent, code, session };
    };

    it("a full login appends the expected events in order, resumable from any id", async () => {
      const phone = uniquePhone();
      const masked = `+91******${phone.slice(-4)}`;
      // From the oldest event kept; this login's own are picked out by its phone and user.
      const [mark] = await collect(client, "0", () => true).catch(() => [] as AuditEvent[]);
      const start = mark?.id ?? "0";
      const { sent, session } = await login(phone);
      const mine = (events: AuditEvent[]) =>
        events.filter((e) => e.phone === masked || e.userId === String(session.user.id));
      const events = mine(
        await collect(client, start, (all) => mine(all).some((e) => e.event === "session.logout")),
      );
      expect(events.map((e) => `${e.event}:${e.reason}`)).toEqual([
        "otp.sent:capture",
        "otp.checked:wrong",
        "otp.checked:ok",
        "user.created:",
        "token.refreshed:rotated",
        "token.refreshed:repeated",
        "session.logout:",
      ]);
      expect(events[0]).toMatchObject({
        verificationId: sent.verificationId,
        clientIp: "203.0.113.5",
        phone: masked,
      });
      expect(events.every((e) => Number(e.timeMs) > 0)).toBe(true);
      // Resuming from any event's id gives exactly the events after it.
      const third = events[2]?.id ?? "";
      const resumed = mine(
        await collect(client, third, (all) => mine(all).some((e) => e.event === "session.logout")),
      );
      expect(resumed.map((e) => e.id)).toEqual(events.slice(3).map((e) => e.id));
    });

    it("a live watcher sees events as they happen", async () => {
      const phone = uniquePhone();
      const masked = `+91******${phone.slice(-4)}`;
      const watching = collect(client, "", (all) => all.some((e) => e.phone === masked));
      // The watcher must be reading before the event, since "" means only new ones.
      await new Promise((r) => setTimeout(r, 300));
      await s.app.login.sendOtp(phone, { ip: "203.0.113.6" });
      await s.app.login.settled();
      const events = await watching;
      expect(events.some((e) => e.event === "otp.sent" && e.phone === masked)).toBe(true);
    });

    it("never holds a code, a token or a full phone", async () => {
      const phone = uniquePhone();
      const { code, session } = await login(phone);
      const all = await collect(client, "0", (events) =>
        events.some((e) => e.event === "session.logout" && e.userId === String(session.user.id)),
      );
      const text = JSON.stringify(all, (_k, v: unknown) => (typeof v === "bigint" ? String(v) : v));
      expect(text).not.toContain(phone);
      expect(text).not.toContain(phone.slice(3));
      expect(text).not.toContain(`"${code}"`);
      expect(text).not.toContain(session.refreshToken);
      if (redis) {
        const raw = await redis().client().xrange("audit:stream", "-", "+");
        const flat = JSON.stringify(raw);
        expect(flat).not.toContain(phone.slice(3));
        expect(flat).not.toContain(session.refreshToken);
      }
    });

    it("refuses a watcher without the token, or with another", async () => {
      for (const headers of [{}, { authorization: "Bearer nope" }, { authorization: TOKEN }]) {
        const err = await (async () => {
          for await (const _ of client.watchAuditEvents({ fromId: "0" }, { headers })) break;
        })().catch((e: unknown) => e);
        expect(ConnectError.from(err).code).toBe(Code.Unauthenticated);
      }
    });

    it("without AUDIT_TOKEN the RPC is unimplemented", async () => {
      const off = await startApp(env());
      try {
        const c = createClient(AuthService, createGrpcTransport({ baseUrl: off.baseUrl }));
        const err = await (async () => {
          for await (const _ of c.watchAuditEvents({ fromId: "0" }, bearer)) break;
        })().catch((e: unknown) => e);
        expect(ConnectError.from(err).code).toBe(Code.Unimplemented);
      } finally {
        await off.close();
      }
    });
  });
}

auditSuite("embedded ring", () => ({}));

describeWithRedis("with Redis", (redis) => {
  let scope: TestRedis | undefined;
  auditSuite(
    "Redis Stream",
    () => {
      scope ??= redis.fresh() as TestRedis;
      return { REDIS_URL: scope.url };
    },
    () => scope as TestRedis,
  );
  it("the stream is bounded by AUDIT_STREAM_MAXLEN", async () => {
    const s = await startApp({ REDIS_URL: redis.fresh().url, AUDIT_STREAM_MAXLEN: "100" });
    try {
      for (let i = 0; i < 400; i++) await s.app.login.sendOtp(uniquePhone(), { ip: "198.51.100.1" });
      await s.app.login.settled();
      const len = await until(async () => (s.app.redis ? await s.app.redis.xlen("audit:stream") : 0));
      expect(len).toBeLessThan(400);
    } finally {
      await s.close();
    }
  });

  it("events appended in one turn go out together, each whole and in order", async () => {
    const scope = redis.fresh();
    const warnings: unknown[] = [];
    const log = { warn: (o: unknown) => warnings.push(o), info() {}, error() {}, debug() {} };
    let t = 1_000;
    const audit = new RedisAuditLog(scope.client(), 1_000, 86_400_000, log, () => t++);
    const conn = scope.client();
    for (let i = 0; i < 50; i++)
      audit.append({ event: "otp.sent", verificationId: `VE${i}`, phone: "+91******0001" });
    const batch = await until(async () => {
      const entries = await conn.xrange("audit:stream", "-", "+");
      return entries.length === 50 ? entries : undefined;
    });
    expect(batch.map(([, f]) => f)).toEqual(
      Array.from({ length: 50 }, (_, i) => [
        "t",
        String(1_000 + i),
        "e",
        "otp.sent",
        "v",
        `VE${i}`,
        "p",
        "+91******0001",
      ]),
    );
    // A lone event later is its own write.
    audit.append({ event: "user.created", userId: 7 });
    const last = await until(async () => {
      const [newest] = await conn.xrevrange("audit:stream", "+", "-", "COUNT", 1);
      return newest?.[1][3] === "user.created" ? newest : undefined;
    });
    expect(last[1]).toEqual(["t", "1050", "e", "user.created", "u", "7"]);
    expect(warnings).toEqual([]);
  });

  it("keeps events for AUDIT_STREAM_RETENTION_DAYS: older ones are trimmed and the key expires after the last", async () => {
    const scope = redis.fresh();
    const log = { warn() {}, info() {}, error() {}, debug() {} };
    const conn = scope.client();
    // An event from long ago (stream ids are Redis's clock in ms), then one appended now.
    await conn.xadd("audit:stream", "1000-0", "t", "1000", "e", "otp.sent");
    const audit = new RedisAuditLog(scope.client(), 1_000, 2 * 86_400_000, log);
    audit.append({ event: "user.created", userId: 9 });
    const kept = await until(async () => {
      const entries = await conn.xrange("audit:stream", "-", "+");
      return entries.some(([, f]) => f[3] === "user.created") ? entries : undefined;
    });
    expect(kept.map(([, f]) => f[3])).toEqual(["user.created"]);
    const ttl = await conn.pttl("audit:stream");
    expect(ttl).toBeGreaterThan(2 * 86_400_000 - 60_000);
    expect(ttl).toBeLessThanOrEqual(2 * 86_400_000);
  });
});
