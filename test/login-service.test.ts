import { Code, ConnectError, createClient, createRouterTransport } from "@connectrpc/connect";
import { describe, expect, it } from "vitest";
import { AuthService } from "../gen/auth/v1/auth_pb.js";
import { ErrorInfoSchema } from "../gen/google/rpc/error_details_pb.js";
import { StoreUnavailableError } from "../src/login/failures.js";
import { type LoginDeps, LoginService } from "../src/login/login-service.js";
import { newUser, type User } from "../src/login/model.js";
import type { AbuseGuard, LoginLog, SmsMessage, UserStore } from "../src/login/ports.js";
import { LoginError, rateLimitIp, rateLimitPhone } from "../src/login/reasons.js";
import { MemoryOtpStore } from "../src/otp/memory-store.js";
import { PhoneNormalizer } from "../src/phone/normalize.js";
import { routes } from "../src/rpc/routes.js";
import { AccessTokens } from "../src/tokens/access-tokens.js";
import { MemoryRefreshStore } from "../src/tokens/memory-refresh-store.js";
import { MemoryUserStore } from "../src/users/memory-store.js";
import { refusal } from "./support/refusal.js";

/**
 * The fourth layer: the kernel built by hand from in-memory fakes of its ports, so each port can be made to
 * misbehave in exactly one way.
 */

const client = { ip: "198.51.100.1" };
const PHONE = "+919876543210";

interface Line {
  readonly level: "info" | "warn" | "error";
  readonly fields: Record<string, unknown>;
  readonly message: string;
}

function recordingLog(): LoginLog & { lines: Line[] } {
  const lines: Line[] = [];
  const at = (level: Line["level"]) => (fields: object, message: string) =>
    void lines.push({ level, fields: fields as Record<string, unknown>, message });
  return { lines, info: at("info"), warn: at("warn"), error: at("error") };
}

const openGuard: AbuseGuard = {
  beforeSend: async (_phone, _client, then) => ({
    permit: { cancel: async () => {} },
    written: await then.run(),
  }),
  beforeTestNumberSend: async () => {},
  beforeReroute: async () => ({ cancel: async () => {} }),
  beforeVerify: async (_phone, _client, then) => ({
    checked: await then.run(),
    givenBack: Promise.resolve(),
  }),
  clientKey: (c) => c.ip,
};

async function kernel(overrides: Partial<LoginDeps> = {}) {
  const sent: SmsMessage[] = [];
  const log = recordingLog();
  const accessTokens = await AccessTokens.create({ issuer: "t", audience: "t", ttlSeconds: 60 });
  const deps: LoginDeps = {
    settings: {
      codeLength: 6,
      codeTtlSeconds: 60,
      maxAttempts: 3,
      failureLock: { maxFailures: 0, lockSeconds: 1 },
      codeSecret: Buffer.alloc(32, 7),
      refreshTtlSeconds: 3600,
      refreshSecret: Buffer.alloc(32, 9),
      refreshReuseGraceSeconds: 10,
    },
    phones: new PhoneNormalizer("IN"),
    codes: new MemoryOtpStore(),
    users: new MemoryUserStore(),
    refreshTokens: new MemoryRefreshStore(),
    accessTokens,
    sms: {
      name: "fake",
      send: async (m) => {
        sent.push(m);
        return { provider: "fake", id: String(sent.length) };
      },
    },
    guard: openGuard,
    message: (code) => `code ${code}`,
    log,
    ...overrides,
  };
  const login = new LoginService(deps);
  const lastCode = () => {
    const m = sent.at(-1);
    if (!m) throw new Error("nothing sent");
    return m.code;
  };
  return { login, log, accessTokens, lastCode, deps };
}

describe("LoginService with fakes of its ports", () => {
  it("a first login that loses the race to create the user is issued tokens for the winner", async () => {
    const winner: User = newUser(41, PHONE);
    // The store reserves id 7 for us, but another request created the phone's user (41) in between.
    const racing: UserStore = {
      findByPhone: async () => undefined,
      admittedFind: () => ({ run: async () => undefined }),
      reserveId: async () => 7,
      create: async () => winner,
    };
    const refreshTokens = new MemoryRefreshStore();
    const { login, lastCode, accessTokens } = await kernel({ users: racing, refreshTokens });
    await login.sendOtp(PHONE, client);
    const session = await login.verifyOtp(PHONE, lastCode(), client);
    expect(session.user).toEqual(winner);
    expect((await accessTokens.verify(session.accessToken)).sub).toBe("41");
    expect(session.refreshToken.startsWith("41.")).toBe(true);
    // The handed-out refresh token works; the draft for id 7 was never handed out.
    expect((await login.refresh(session.refreshToken)).refreshToken.startsWith("41.")).toBe(true);
  });

  it("a refund that fails after a login is logged and the login still succeeds", async () => {
    const guard: AbuseGuard = {
      ...openGuard,
      beforeVerify: async (_phone, _client, then) => {
        const checked = await then.run();
        return {
          checked,
          givenBack: then.matched(checked) ? Promise.reject(new Error("refund lost")) : Promise.resolve(),
        };
      },
    };
    const { login, log, lastCode } = await kernel({ guard });
    await login.sendOtp(PHONE, client);
    expect((await login.verifyOtp(PHONE, lastCode(), client)).user.phone).toBe(PHONE);
    expect(log.lines).toContainEqual(
      expect.objectContaining({ level: "warn", message: "could not refund limits" }),
    );
  });

  it("a refund that fails after an unsent SMS still answers SMS_UNAVAILABLE and leaves no live code", async () => {
    let cancelled = 0;
    const guard: AbuseGuard = {
      ...openGuard,
      beforeSend: async (_phone, _client, then) => ({
        permit: {
          cancel: async () => {
            cancelled += 1;
            throw new StoreUnavailableError("redis: Connection is closed.");
          },
        },
        written: await then.run(),
      }),
    };
    const codes = new MemoryOtpStore();
    const sms = { name: "down", send: async () => Promise.reject(new Error("socket hang up")) };
    const { login } = await kernel({ guard, sms, codes });
    expect((await refusal(login.sendOtp(PHONE, client))).reason).toBe("SMS_UNAVAILABLE");
    expect(cancelled).toBe(1);
    expect(await codes.verify(PHONE, "anything", 3)).toEqual({ kind: "missing" });
  });

  it("a store that cannot answer is STORE_UNAVAILABLE, and the send's write was the guard's to run", async () => {
    let ran = 0;
    const guard: AbuseGuard = {
      ...openGuard,
      // The guard runs the code's put only once the send is admitted (SendPolicy gives back what it counted
      // when the put fails: test/send-policy.test.ts).
      beforeSend: async (_phone, _client, then) => {
        ran += 1;
        return { permit: { cancel: async () => {} }, written: await then.run() };
      },
    };
    const codes = new MemoryOtpStore();
    codes.put = async () => Promise.reject(new StoreUnavailableError("redis: Command timed out"));
    const { login, log } = await kernel({ guard, codes });
    const err = await refusal(login.sendOtp(PHONE, client));
    expect(err).toMatchObject({ reason: "STORE_UNAVAILABLE", kind: "unavailable" });
    expect(ran).toBe(1);
    expect(log.lines).toContainEqual(
      expect.objectContaining({ level: "error", message: "store unavailable: redis: Command timed out" }),
    );
  });

  it("a refused send stores no code", async () => {
    const guard: AbuseGuard = {
      ...openGuard,
      beforeSend: async () => Promise.reject(rateLimitPhone(30_000)),
    };
    const codes = new MemoryOtpStore();
    let puts = 0;
    codes.put = async () => {
      puts += 1;
      return { verificationId: "v", expiresAtMs: 0 };
    };
    const { login } = await kernel({ guard, codes });
    expect((await refusal(login.sendOtp(PHONE, client))).reason).toBe("RATE_LIMIT_PHONE");
    expect(puts).toBe(0);
  });

  it("a refused verify looks nobody up: the user lookup rides with the admitted check", async () => {
    const guard: AbuseGuard = {
      ...openGuard,
      beforeVerify: async () => Promise.reject(rateLimitIp(30_000, "verify")),
    };
    const users = new MemoryUserStore();
    let lookups = 0;
    users.findByPhone = async () => {
      lookups += 1;
      return undefined;
    };
    const { login, lastCode } = await kernel({ guard, users });
    await login.sendOtp(PHONE, client);
    expect((await refusal(login.verifyOtp(PHONE, lastCode(), client))).reason).toBe("RATE_LIMIT_IP");
    expect(lookups).toBe(0);
  });

  it("anything else a store throws is a bug: INTERNAL with an error id, never an outage", async () => {
    const users = new MemoryUserStore();
    users.findByPhone = async () => Promise.reject(new Error('malformed user record (id "abc")'));
    const { login, log, lastCode } = await kernel({ users });
    await login.sendOtp(PHONE, client);
    const thrown = await login.verifyOtp(PHONE, lastCode(), client).catch((e: unknown) => e);
    expect(thrown).not.toBeInstanceOf(LoginError);

    // Through the Connect adapter (in memory): internal, the id in ErrorInfo and in the log line.
    const rpc = createClient(AuthService, createRouterTransport(routes(login, log)));
    await rpc.sendOtp({ phone: PHONE });
    const err = ConnectError.from(
      await rpc.verifyOtp({ phone: PHONE, otp: lastCode() }).catch((e: unknown) => e),
    );
    expect(err.code).toBe(Code.Internal);
    const [info] = err.findDetails(ErrorInfoSchema);
    expect(info?.reason).toBe("INTERNAL");
    const errorId = info?.metadata.error_id;
    expect(errorId).toMatch(/^[0-9a-f-]{36}$/);
    expect(err.rawMessage).toBe(`internal error (error id ${errorId})`);
    expect(err.rawMessage).not.toContain("malformed");
    expect(log.lines).toContainEqual(
      expect.objectContaining({
        level: "error",
        message: "internal error",
        fields: expect.objectContaining({ errorId }),
      }),
    );
  });
});
