import { Code, ConnectError, createClient } from "@connectrpc/connect";
import {
  createConnectTransport,
  createGrpcTransport,
  createGrpcWebTransport,
} from "@connectrpc/connect-node";
import { afterAll, beforeAll, beforeEach, describe, expect, it } from "vitest";
import { AuthService } from "../gen/auth/v1/auth_pb.js";
import { RetryInfoSchema } from "../gen/google/rpc/error_details_pb.js";
import type { Client } from "../src/login/model.js";
import type { LoginError } from "../src/login/reasons.js";
import { type RunningApp, startApp } from "./support/app.js";
import { uniquePhone } from "./support/capture-sms.js";
import { describeWithRedis, type RedisScope } from "./support/redis.js";
import { refusal } from "./support/refusal.js";

let ipSeq = 0;
/** An address no other test uses, so per-IP counts never leak between tests. */
function uniqueClient(): Client {
  ipSeq += 1;
  return { ip: `198.51.${(ipSeq >> 8) & 255}.${ipSeq & 255}` };
}

/** Every limit off but the ones a test names (0 turns a limit off). */
const OFF: Record<string, string> = {
  RATE_LIMIT_IP_POINTS: "0",
  RATE_LIMIT_PHONE_SEND_POINTS: "0",
  RATE_LIMIT_PHONE_COOLDOWN_SECONDS: "0",
  RATE_LIMIT_PHONE_FAILURES: "0",
  SMS_MAX_PER_PREFIX_PER_HOUR: "0",
  SMS_MAX_PER_COUNTRY_PER_HOUR: "0",
  SMS_MAX_PER_HOUR: "0",
};

/** A refusal a caller can act on: the right reason, and a whole number of seconds within the window. */
function expectExhausted(err: LoginError, reason: string, maxSeconds: number): void {
  expect(err.kind).toBe("resource_exhausted");
  expect(err.reason).toBe(reason);
  expect(Number.isInteger(err.retryAfterSeconds)).toBe(true);
  expect(err.retryAfterSeconds).toBeGreaterThanOrEqual(1);
  expect(err.retryAfterSeconds).toBeLessThanOrEqual(maxSeconds);
  expect(err.message).toMatch(/try again in \d+ (second|minute|hour)s?$/);
}

/**
 * @param reset gives the next test an empty store: apps on one Redis share its keys, and the service-wide
 * caps (per country, global) would otherwise carry over from test to test.
 */
function limitsSuite(name: string, storeEnv: () => Record<string, string>, reset: () => void) {
  describe(`abuse limits (${name})`, () => {
    beforeEach(reset);
    const apps: RunningApp[] = [];
    afterAll(() => Promise.all(apps.map((a) => a.close())));
    const app = async (limits: Record<string, string>) => {
      const s = await startApp({ ...storeEnv(), ...OFF, ...limits });
      apps.push(s);
      return s;
    };

    it("per IP: RATE_LIMIT_IP_POINTS sends per window, then refused at no SMS cost; other IPs unaffected", async () => {
      const s = await app({ RATE_LIMIT_IP_POINTS: "5", RATE_LIMIT_IP_DURATION_SECONDS: "900" });
      const client = uniqueClient();
      for (let i = 0; i < 5; i++) await s.app.login.sendOtp(uniquePhone(), client);
      const sent = s.sms.sent.length;
      const err = await refusal(s.app.login.sendOtp(uniquePhone(), client));
      expectExhausted(err, "RATE_LIMIT_IP", 900);
      expect(err.message).toMatch(/from your network; try again in \d+ minutes$/);
      expect(s.sms.sent.length).toBe(sent);
      await expect(s.app.login.sendOtp(uniquePhone(), uniqueClient())).resolves.toBeTruthy();
    });

    it("per IP: RATE_LIMIT_IP_POINTS verifies per window; a refused verify leaves the code untouched", async () => {
      const s = await app({ RATE_LIMIT_IP_POINTS: "5", OTP_MAX_ATTEMPTS: "10" });
      const phone = uniquePhone();
      const attacker = uniqueClient();
      await s.app.login.sendOtp(phone, uniqueClient());
      const code = s.sms.lastCode(phone);
      const wrong = code === "000000" ? "111111" : "000000";
      for (let i = 0; i < 5; i++) {
        expect((await refusal(s.app.login.verifyOtp(phone, wrong, attacker))).kind).toBe("unauthenticated");
      }
      expectExhausted(await refusal(s.app.login.verifyOtp(phone, code, attacker)), "RATE_LIMIT_IP", 900);
      // The refused tries spent no attempt on the code: 5 of 10 are left, and it still works.
      const err = await refusal(s.app.login.verifyOtp(phone, wrong, uniqueClient()));
      expect(err.message).toMatch(/4 attempts left/);
      await expect(s.app.login.verifyOtp(phone, code, uniqueClient())).resolves.toBeTruthy();
    });

    it("a completed login gives its address back: many real users behind one carrier NAT all get in", async () => {
      const s = await app({ RATE_LIMIT_IP_POINTS: "2" });
      const nat = uniqueClient();
      for (let i = 0; i < 10; i++) {
        const phone = uniquePhone();
        await s.app.login.sendOtp(phone, nat);
        await s.app.login.verifyOtp(phone, s.sms.lastCode(phone), nat);
      }
      // Logins that never complete still count.
      await s.app.login.sendOtp(uniquePhone(), nat);
      await s.app.login.sendOtp(uniquePhone(), nat);
      expectExhausted(await refusal(s.app.login.sendOtp(uniquePhone(), nat)), "RATE_LIMIT_IP", 900);
    });

    it("per phone cooldown: a refused resend costs no SMS, keeps the current code, and eats no hourly budget", async () => {
      const s = await app({ RATE_LIMIT_PHONE_COOLDOWN_SECONDS: "30", SMS_MAX_PER_HOUR: "2" });
      const client = uniqueClient();
      const a = uniquePhone();
      await s.app.login.sendOtp(a, client);
      const code = s.sms.lastCode(a);
      const sent = s.sms.sent.length;
      const err = await refusal(s.app.login.sendOtp(a, client));
      expectExhausted(err, "OTP_COOLDOWN", 30);
      expect(err.message).toMatch(/try again in \d+ seconds?$/);
      expect(s.sms.sent.length).toBe(sent);
      // The budget of 2 has room for b: the cooldown refusal gave back its hourly point.
      await s.app.login.sendOtp(uniquePhone(), client);
      expectExhausted(
        await refusal(s.app.login.sendOtp(uniquePhone(), client)),
        "SMS_BUDGET_EXHAUSTED",
        3600,
      );
      await expect(s.app.login.verifyOtp(a, code, client)).resolves.toBeTruthy();
    });

    it("per phone: RATE_LIMIT_PHONE_SEND_POINTS codes per window", async () => {
      const s = await app({
        RATE_LIMIT_PHONE_SEND_POINTS: "3",
        RATE_LIMIT_PHONE_SEND_DURATION_SECONDS: "600",
      });
      const phone = uniquePhone();
      for (let i = 0; i < 3; i++) await s.app.login.sendOtp(phone, uniqueClient());
      expectExhausted(await refusal(s.app.login.sendOtp(phone, uniqueClient())), "RATE_LIMIT_PHONE", 600);
      await expect(s.app.login.sendOtp(uniquePhone(), uniqueClient())).resolves.toBeTruthy();
    });

    it("locks a phone after RATE_LIMIT_PHONE_FAILURES wrong codes across resends, even for the right code", async () => {
      const s = await app({ RATE_LIMIT_PHONE_FAILURES: "4", OTP_MAX_ATTEMPTS: "3" });
      const phone = uniquePhone();
      const guesser = uniqueClient();
      const wrongFor = (code: string) => (code === "000000" ? "111111" : "000000");
      await s.app.login.sendOtp(phone, uniqueClient());
      for (let i = 0; i < 3; i++) {
        await refusal(s.app.login.verifyOtp(phone, wrongFor(s.sms.lastCode(phone)), guesser));
      }
      // A new code does not reset the phone's count.
      await s.app.login.sendOtp(phone, uniqueClient());
      await refusal(s.app.login.verifyOtp(phone, wrongFor(s.sms.lastCode(phone)), guesser));
      const code = s.sms.lastCode(phone);
      const err = await refusal(s.app.login.verifyOtp(phone, code, guesser));
      expectExhausted(err, "PHONE_LOCKED", 3600);
      expect(err.retryAfterSeconds).toBeGreaterThan(3500);
      // Sending more codes to a locked phone for the client that failed only costs money.
      const sent = s.sms.sent.length;
      expectExhausted(await refusal(s.app.login.sendOtp(phone, guesser)), "PHONE_LOCKED", 3600);
      expect(s.sms.sent.length).toBe(sent);
    });

    it("the lock stops the clients that failed, not a client that never did: the owner still signs in", async () => {
      const s = await app({ RATE_LIMIT_PHONE_FAILURES: "4", OTP_MAX_ATTEMPTS: "5" });
      const phone = uniquePhone();
      const attacker = uniqueClient();
      const owner = uniqueClient();
      const wrongFor = (code: string) => (code === "000000" ? "111111" : "000000");
      await s.app.login.sendOtp(phone, attacker);
      for (let i = 0; i < 4; i++) {
        await refusal(s.app.login.verifyOtp(phone, wrongFor(s.sms.lastCode(phone)), attacker));
      }
      expectExhausted(await refusal(s.app.login.sendOtp(phone, attacker)), "PHONE_LOCKED", 3600);
      // The owner may ask for a code and use it.
      await s.app.login.sendOtp(phone, owner);
      const code = s.sms.lastCode(phone);
      expectExhausted(await refusal(s.app.login.verifyOtp(phone, code, attacker)), "PHONE_LOCKED", 3600);
      await expect(s.app.login.verifyOtp(phone, code, owner)).resolves.toBeTruthy();
      // The lock outlives the owner's login: it is there for the attacker.
      expectExhausted(await refusal(s.app.login.sendOtp(phone, attacker)), "PHONE_LOCKED", 3600);
      // A fresh client gets one try at the locked phone: a wrong one makes it a client that failed.
      const other = uniqueClient();
      await s.app.login.sendOtp(phone, other);
      const next = s.sms.lastCode(phone);
      expect((await refusal(s.app.login.verifyOtp(phone, wrongFor(next), other))).reason).toBe(
        "OTP_INCORRECT",
      );
      expectExhausted(await refusal(s.app.login.verifyOtp(phone, next, other)), "PHONE_LOCKED", 3600);
    });

    it("numbers that are never a person's mobile are refused as INVALID_PHONE, at no cost", async () => {
      const s = await app({});
      // Satellite (Iridium, Globalstar, Inmarsat), +883 international networks, UK personal and pager numbers.
      for (const phone of [
        "+881631234567",
        "+881812345678",
        "+870773123456",
        "+883510012345",
        "+447012345678",
        "+447623456789",
      ]) {
        const err = await refusal(s.app.login.sendOtp(phone, uniqueClient()));
        expect(err).toMatchObject({ kind: "invalid_argument", reason: "INVALID_PHONE" });
      }
      expect(s.sms.sent).toHaveLength(0);
      const open = await app({ SMS_BLOCKED_PREFIXES: "none", SMS_BLOCKED_NUMBER_TYPES: "PAGER" });
      await expect(open.app.login.sendOtp("+881631234567", uniqueClient())).resolves.toBeTruthy();
      await expect(open.app.login.sendOtp("+447012345678", uniqueClient())).resolves.toBeTruthy();
      const pager = await refusal(open.app.login.sendOtp("+447623456789", uniqueClient()));
      expect(pager.reason).toBe("INVALID_PHONE");
    });

    it("a successful login clears the phone's failure count", async () => {
      const s = await app({ RATE_LIMIT_PHONE_FAILURES: "3", OTP_MAX_ATTEMPTS: "5" });
      const phone = uniquePhone();
      for (let round = 0; round < 3; round++) {
        await s.app.login.sendOtp(phone, uniqueClient());
        const code = s.sms.lastCode(phone);
        await refusal(s.app.login.verifyOtp(phone, code === "000000" ? "111111" : "000000", uniqueClient()));
        await refusal(s.app.login.verifyOtp(phone, code === "000000" ? "111112" : "000001", uniqueClient()));
        await expect(s.app.login.verifyOtp(phone, code, uniqueClient())).resolves.toBeTruthy();
      }
    });

    it("SMS pumping: at most SMS_MAX_PER_PREFIX_PER_HOUR codes to numbers sharing all but the last 4 digits", async () => {
      const s = await app({ SMS_MAX_PER_PREFIX_PER_HOUR: "2" });
      const prefix = uniquePhone().slice(0, -4);
      await s.app.login.sendOtp(`${prefix}0001`, uniqueClient());
      await s.app.login.sendOtp(`${prefix}0002`, uniqueClient());
      expectExhausted(
        await refusal(s.app.login.sendOtp(`${prefix}0003`, uniqueClient())),
        "SMS_PREFIX_LIMIT",
        3600,
      );
      await expect(s.app.login.sendOtp(uniquePhone(), uniqueClient())).resolves.toBeTruthy();
    });

    it("SMS pumping: at most SMS_MAX_PER_COUNTRY_PER_HOUR codes per country calling code", async () => {
      const s = await app({ SMS_MAX_PER_COUNTRY_PER_HOUR: "2" });
      await s.app.login.sendOtp(uniquePhone(), uniqueClient());
      await s.app.login.sendOtp(uniquePhone(), uniqueClient());
      const err = await refusal(s.app.login.sendOtp(uniquePhone(), uniqueClient()));
      expectExhausted(err, "SMS_COUNTRY_LIMIT", 3600);
      await expect(s.app.login.sendOtp("+447400123456", uniqueClient())).resolves.toBeTruthy();
    });

    it("SMS_ALLOWED_COUNTRIES: other destinations are refused with failed_precondition, at no cost", async () => {
      const s = await app({ SMS_ALLOWED_COUNTRIES: "gb, US" });
      const err = await refusal(s.app.login.sendOtp(uniquePhone(), uniqueClient()));
      expect(err).toMatchObject({ kind: "failed_precondition", reason: "COUNTRY_NOT_ALLOWED" });
      expect(err.message).toMatch(/not sent to IN numbers/);
      expect(s.sms.sent).toHaveLength(0);
      await expect(s.app.login.sendOtp("+447400123456", uniqueClient())).resolves.toBeTruthy();
    });

    it("an SMS that could not be sent gives back its per-phone and hourly points", async () => {
      const s = await app({ RATE_LIMIT_PHONE_COOLDOWN_SECONDS: "30", SMS_MAX_PER_HOUR: "1" });
      const phone = uniquePhone();
      s.sms.failWith = new Error("provider down");
      try {
        expect((await refusal(s.app.login.sendOtp(phone, uniqueClient()))).kind).toBe("unavailable");
      } finally {
        s.sms.failWith = undefined;
      }
      await expect(s.app.login.sendOtp(phone, uniqueClient())).resolves.toBeTruthy();
    });
  });
}

limitsSuite(
  "embedded in-memory store",
  () => ({}),
  () => {},
);

describeWithRedis("with Redis", (redis) => {
  // A keyspace of its own per test rather than a FLUSHDB: the Redis may be one REDIS_URL names.
  let scope: RedisScope;
  const fresh = () => {
    scope = redis.fresh();
  };
  limitsSuite("Redis", () => ({ REDIS_URL: scope.url }), fresh);

  describe("what a limited caller gets on every protocol", () => {
    let s: RunningApp;
    beforeAll(async () => {
      s = await startApp({ REDIS_URL: redis.url, RATE_LIMIT_PHONE_COOLDOWN_SECONDS: "60" });
    });
    afterAll(() => s?.close());

    const post = (path: string, body: unknown, headers: Record<string, string> = {}) =>
      fetch(`${s.baseUrl}${path}`, {
        method: "POST",
        headers: { "content-type": "application/json", ...headers },
        body: JSON.stringify(body),
      });

    it("/api/v1: 429 with Retry-After in seconds and a message saying when", async () => {
      const phone = uniquePhone();
      expect((await post("/api/v1/auth/send-otp", { phone })).status).toBe(200);
      const res = await post("/api/v1/auth/send-otp", { phone });
      expect(res.status).toBe(429);
      const retryAfter = Number(res.headers.get("retry-after"));
      expect(Number.isInteger(retryAfter)).toBe(true);
      expect(retryAfter).toBeGreaterThanOrEqual(1);
      expect(retryAfter).toBeLessThanOrEqual(60);
      const body = (await res.json()) as { code: string; message: string; detail: string };
      expect(body.code).toBe("resource_exhausted");
      expect(body.message).toMatch(new RegExp(`try again in ${retryAfter} seconds?$`));
    });

    const transports = {
      "Connect JSON": () => createConnectTransport({ baseUrl: s.baseUrl, httpVersion: "1.1" }),
      "Connect binary over HTTP/2": () =>
        createConnectTransport({ baseUrl: s.baseUrl, httpVersion: "2", useBinaryFormat: true }),
      gRPC: () => createGrpcTransport({ baseUrl: s.baseUrl }),
      "gRPC-Web": () => createGrpcWebTransport({ baseUrl: s.baseUrl, httpVersion: "1.1" }),
    };
    for (const [name, transport] of Object.entries(transports)) {
      it(`${name}: ResourceExhausted with a google.rpc.RetryInfo detail`, async () => {
        const client = createClient(AuthService, transport());
        const phone = uniquePhone();
        await client.sendOtp({ phone });
        const err = ConnectError.from(await client.sendOtp({ phone }).catch((e: unknown) => e));
        expect(err.code).toBe(Code.ResourceExhausted);
        expect(err.rawMessage).toMatch(/try again in \d+ seconds?$/);
        const [info] = err.findDetails(RetryInfoSchema);
        const seconds = Number(info?.retryDelay?.seconds ?? 0n);
        expect(seconds).toBeGreaterThanOrEqual(1);
        expect(seconds).toBeLessThanOrEqual(60);
        expect(err.metadata.get("x-error-reason")).toBe("OTP_COOLDOWN");
      });
    }
  });

  describe("round trips (limits included)", () => {
    let s: RunningApp;
    beforeAll(async () => {
      // Every limit on, at its default.
      s = await startApp({
        REDIS_URL: redis.url,
        RATE_LIMIT_IP_POINTS: "5",
        RATE_LIMIT_PHONE_SEND_POINTS: "5",
        RATE_LIMIT_PHONE_COOLDOWN_SECONDS: "30",
        SMS_MAX_PER_PREFIX_PER_HOUR: "20",
        SMS_MAX_PER_COUNTRY_PER_HOUR: "1000",
        SMS_MAX_PER_HOUR: "5000",
      });
    });
    afterAll(() => s?.close());

    /**
     * Sequential round trips to Redis that `fn` waited on: a command written after a reply opens one, commands
     * with no reply between them (issued together, all in flight at once) share it, and it counts when its
     * first reply arrives before `fn` is done. ioredis hands each command to `stream.write` on its own (the
     * client corks the socket, so several may reach the kernel in one writev). A command issued with the answer
     * and not awaited (the send record) is not waited on, nor is the audit log's append (the log sends its
     * events at the end of the event loop's turn, as one command of their own).
     */
    async function roundTripsDuring(fn: () => Promise<unknown>): Promise<number> {
      const stream = (
        s.app.redis as unknown as {
          stream: {
            write: (...args: unknown[]) => boolean;
            on: (e: "data", f: () => void) => void;
            off: (e: "data", f: () => void) => void;
          };
        }
      ).stream;
      const write = stream.write;
      let n = 0;
      // A round trip is open: written, no reply yet.
      let awaiting = false;
      const onData = () => {
        if (awaiting) n += 1;
        awaiting = false;
      };
      stream.on("data", onData);
      stream.write = (...args: unknown[]) => {
        const payload = String(args[0]);
        const commands = payload.match(/(^|\r\n)\*\d+\r\n/g)?.length ?? 0;
        if (!(commands === 1 && payload.includes("audit:stream"))) awaiting = true;
        return write.apply(stream, args);
      };
      try {
        await fn();
      } finally {
        stream.write = write;
        stream.off("data", onData);
      }
      return n;
    }

    it("SendOtp waits on 1 round trip, VerifyOtp of a known user on 2: each store script rides in its limit's", async () => {
      const login = s.app.login;
      const client = uniqueClient();
      // The first login loads the scripts (EVAL once per connection) and creates the user; the round trips
      // counted are those of a returning user, the common case.
      const phone = uniquePhone();
      await login.sendOtp(phone, client);
      await login.verifyOtp(phone, s.sms.lastCode(phone), client);
      // Lift the cooldown that login started (the user must stay, so no fresh store).
      await redis.client().del(`rl:send-cooldown:${phone}`);
      expect(await roundTripsDuring(() => login.sendOtp(phone, client))).toBe(1);
      expect(await roundTripsDuring(() => login.verifyOtp(phone, s.sms.lastCode(phone), client))).toBe(2);
    });

    it("a first login (a new user) also waits on 2: the user is created in the session's round trip", async () => {
      const login = s.app.login;
      const client = uniqueClient();
      // Warm: scripts loaded and this process's block of user ids reserved by an earlier first login.
      const warm = uniquePhone();
      await login.sendOtp(warm, client);
      await login.verifyOtp(warm, s.sms.lastCode(warm), client);
      const phone = uniquePhone();
      await login.sendOtp(phone, client);
      let session: Awaited<ReturnType<typeof login.verifyOtp>> | undefined;
      const trips = await roundTripsDuring(async () => {
        session = await login.verifyOtp(phone, s.sms.lastCode(phone), client);
      });
      expect(trips).toBe(2);
      // The session stored in that same round trip belongs to the user created in it.
      expect(session?.user.phone).toBe(phone);
      const rotated = await login.refresh(session?.refreshToken ?? "");
      expect((await s.app.accessTokens.verify(rotated.accessToken)).sub).toBe(String(session?.user.id));
    });
  });

  describe("trusted proxies", () => {
    // Every request comes from 127.0.0.1, whose count the tests above have already used.
    beforeEach(fresh);
    const apps: RunningApp[] = [];
    afterAll(() => Promise.all(apps.map((a) => a.close())));
    const sendFrom = (s: RunningApp, xff: string) =>
      fetch(`${s.baseUrl}/api/v1/auth/send-otp`, {
        method: "POST",
        headers: { "content-type": "application/json", "x-forwarded-for": xff },
        body: JSON.stringify({ phone: uniquePhone() }),
      }).then((r) => r.status);

    it("a spoofed X-Forwarded-For from an untrusted peer changes nothing: the peer is limited", async () => {
      const s = await startApp({ REDIS_URL: scope.url, RATE_LIMIT_IP_POINTS: "2" });
      apps.push(s);
      expect(await sendFrom(s, "203.0.113.1")).toBe(200);
      expect(await sendFrom(s, "203.0.113.2")).toBe(200);
      expect(await sendFrom(s, "203.0.113.3")).toBe(429);
    });

    it("behind a trusted proxy, each client is limited by the right-most untrusted address", async () => {
      const s = await startApp({
        REDIS_URL: scope.url,
        RATE_LIMIT_IP_POINTS: "2",
        TRUSTED_PROXIES: "127.0.0.1",
      });
      apps.push(s);
      for (const ip of ["203.0.113.1", "203.0.113.2", "203.0.113.3"]) expect(await sendFrom(s, ip)).toBe(200);
      // The client may prepend whatever it likes; our proxy appended the address it really came from.
      expect(await sendFrom(s, "1.1.1.1, 203.0.113.9")).toBe(200);
      expect(await sendFrom(s, "2.2.2.2, 203.0.113.9")).toBe(200);
      expect(await sendFrom(s, "3.3.3.3, 203.0.113.9")).toBe(429);
    });
  });
});
