import { afterAll, beforeAll, describe, expect, it } from "vitest";
import type { LoginService } from "../src/login/login-service.js";
import { type RunningApp, startApp } from "./support/app.js";
import { uniquePhone } from "./support/capture-sms.js";
import { describeWithRedis } from "./support/redis.js";
import { refusal } from "./support/refusal.js";

const client = { ip: "203.0.113.7" };

/** The login core, through the same wiring production uses, on each store. */
function loginSuite(name: string, env: () => Record<string, string>) {
  describe(`login core (${name})`, () => {
    let running: RunningApp;
    let login: LoginService;
    beforeAll(async () => {
      running = await startApp({ OTP_MAX_ATTEMPTS: "3", ...env() });
      login = running.app.login;
    });
    afterAll(() => running.close());

    const sendAndRead = async (phone: string) => {
      const sent = await login.sendOtp(phone, client);
      return { sent, code: running.sms.lastCode(sent.phone) };
    };

    it("sends a code, verifies it once, and creates the user on first login", async () => {
      const phone = uniquePhone();
      const { sent, code } = await sendAndRead(phone);
      expect(sent).toEqual({
        phone,
        expiresInSeconds: 600,
        codeLength: 6,
        verificationId: expect.stringMatching(/^VE[0-9a-f]{32}$/),
      });
      expect(code).toMatch(/^\d{6}$/);
      expect(running.sms.sent.at(-1)?.text).toContain(code);

      const session = await login.verifyOtp(phone, code, client);
      expect(session.user).toMatchObject({
        phone,
        name: `User ${phone.slice(-4)}`,
        role: "consumer",
        isPhoneVerified: true,
      });
      expect(session.user.id).toBeGreaterThan(0);
      expect(session.expiresIn).toBe(900);
      const claims = await running.app.accessTokens.verify(session.accessToken);
      expect(claims).toMatchObject({ sub: String(session.user.id), phone, role: "consumer" });

      expect((await refusal(login.verifyOtp(phone, code, client))).reason).toBe("OTP_EXPIRED");
    });

    it("returns the same user on the next login", async () => {
      const phone = uniquePhone();
      const first = await login.verifyOtp(phone, (await sendAndRead(phone)).code, client);
      const second = await login.verifyOtp(phone, (await sendAndRead(phone)).code, client);
      expect(second.user.id).toBe(first.user.id);
    });

    it("normalises the phone the same way on send and verify", async () => {
      const phone = uniquePhone();
      const national = `${phone.slice(3, 8)} ${phone.slice(8)}`;
      const { code } = await sendAndRead(national);
      expect((await login.verifyOtp(`+91 ${phone.slice(3)}`, code, client)).user.phone).toBe(phone);
    });

    it("counts wrong codes and kills the code after OTP_MAX_ATTEMPTS, even if the right one follows", async () => {
      const phone = uniquePhone();
      const { code } = await sendAndRead(phone);
      const wrong = code === "000000" ? "111111" : "000000";
      expect((await refusal(login.verifyOtp(phone, wrong, client))).message).toMatch(/2 attempts left/);
      expect((await refusal(login.verifyOtp(phone, wrong, client))).message).toMatch(/1 attempt left/);
      const third = await refusal(login.verifyOtp(phone, wrong, client));
      expect(third.kind).toBe("unauthenticated");
      expect(third.message).toMatch(/no attempts left/);
      expect((await refusal(login.verifyOtp(phone, code, client))).reason).toBe("OTP_ATTEMPTS_EXHAUSTED");
    });

    it("a resend keeps the previous code valid beside the new one, in the same verification", async () => {
      const phone = uniquePhone();
      const first = await sendAndRead(phone);
      const second = await sendAndRead(phone);
      expect(second.sent.verificationId).toBe(first.sent.verificationId);
      await expect(login.verifyOtp(phone, first.code, client)).resolves.toBeTruthy();
      // One login per verification: the other code went with it.
      expect((await refusal(login.verifyOtp(phone, second.code, client))).reason).toBe("OTP_EXPIRED");
    });

    it("refuses a malformed code without spending an attempt", async () => {
      const phone = uniquePhone();
      const { code } = await sendAndRead(phone);
      for (const bad of ["12345", "1234567", "12a456", ""]) {
        expect((await refusal(login.verifyOtp(phone, bad, client))).kind).toBe("invalid_argument");
      }
      await expect(login.verifyOtp(phone, code, client)).resolves.toBeTruthy();
    });

    it("leaves no usable code when the SMS could not be sent", async () => {
      const phone = uniquePhone();
      const { code } = await sendAndRead(phone);
      running.sms.failWith = new Error("provider exploded");
      try {
        expect((await refusal(login.sendOtp(phone, client))).kind).toBe("unavailable");
      } finally {
        running.sms.failWith = undefined;
      }
      // The unsent code was discarded; the earlier one, which did arrive, still works.
      expect(running.sms.sent.filter((m) => m.to === phone)).toHaveLength(1);
      await expect(login.verifyOtp(phone, code, client)).resolves.toBeTruthy();
    });

    it("rotates refresh tokens; reuse of a rotated token revokes the whole family", async () => {
      const phone = uniquePhone();
      const session = await login.verifyOtp(phone, (await sendAndRead(phone)).code, client);
      const r1 = await login.refresh(session.refreshToken);
      expect(r1.refreshToken).not.toBe(session.refreshToken);
      expect((await running.app.accessTokens.verify(r1.accessToken)).sub).toBe(String(session.user.id));
      const r2 = await login.refresh(r1.refreshToken);

      const reuse = await refusal(login.refresh(session.refreshToken));
      expect(reuse.reason).toBe("REFRESH_TOKEN_REUSED");
      // The thief's replay took the legitimate holder's newest token down with it.
      expect((await refusal(login.refresh(r2.refreshToken))).reason).toBe("REFRESH_TOKEN_INVALID");
    });

    it("a refresh presented twice within the grace gives the same next token, and the family lives on", async () => {
      const phone = uniquePhone();
      const session = await login.verifyOtp(phone, (await sendAndRead(phone)).code, client);
      const [a, b] = await Promise.all([
        login.refresh(session.refreshToken),
        login.refresh(session.refreshToken),
      ]);
      expect(a.refreshToken).toBe(b.refreshToken);
      const again = await login.refresh(session.refreshToken);
      expect(again.refreshToken).toBe(a.refreshToken);
      // Every answer carries a valid access token of its own.
      for (const pair of [a, b, again]) {
        expect((await running.app.accessTokens.verify(pair.accessToken)).sub).toBe(String(session.user.id));
      }
      const next = await login.refresh(a.refreshToken);
      expect(next.refreshToken).not.toBe(a.refreshToken);
      // The successor has moved on: the first token is now a replay.
      expect((await refusal(login.refresh(session.refreshToken))).reason).toBe("REFRESH_TOKEN_REUSED");
      expect((await refusal(login.refresh(next.refreshToken))).reason).toBe("REFRESH_TOKEN_INVALID");
    });

    it("logout revokes the family; logging out again is harmless", async () => {
      const phone = uniquePhone();
      const session = await login.verifyOtp(phone, (await sendAndRead(phone)).code, client);
      const rotated = await login.refresh(session.refreshToken);
      await login.logout(rotated.refreshToken);
      expect((await refusal(login.refresh(rotated.refreshToken))).kind).toBe("unauthenticated");
      await expect(login.logout(rotated.refreshToken)).resolves.toBeUndefined();
    });

    it("logout succeeds, revealing nothing, for unknown, malformed, spent and revoked tokens", async () => {
      const phone = uniquePhone();
      const session = await login.verifyOtp(phone, (await sendAndRead(phone)).code, client);
      const rotated = await login.refresh(session.refreshToken);
      // A spent token is still of the family: logging out with it ends the session.
      await expect(login.logout(session.refreshToken)).resolves.toBeUndefined();
      expect((await refusal(login.refresh(rotated.refreshToken))).reason).toBe("REFRESH_TOKEN_INVALID");
      for (const token of [
        session.refreshToken,
        rotated.refreshToken,
        "garbage",
        "1.AAAAAAAAAAAAAAAAAAAAAA.BBBBBBBBBBBBBBBBBBBBBBBBBBBBBBBBBBBBBBBBBBB",
      ]) {
        await expect(login.logout(token)).resolves.toBeUndefined();
      }
      // No token at all is a missing parameter, not a token.
      expect((await refusal(login.logout(" "))).reason).toBe("REFRESH_TOKEN_INVALID");
    });

    it("refuses refresh tokens it never issued", async () => {
      for (const token of [
        "",
        "garbage",
        "1.AAAAAAAAAAAAAAAAAAAAAA.BBBBBBBBBBBBBBBBBBBBBBBBBBBBBBBBBBBBBBBBBBB",
      ]) {
        expect((await refusal(login.refresh(token))).kind).toBe("unauthenticated");
      }
    });

    it("50 concurrent verifies of one code give exactly one session", async () => {
      const phone = uniquePhone();
      const { code } = await sendAndRead(phone);
      const results = await Promise.allSettled(
        Array.from({ length: 50 }, () => login.verifyOtp(phone, code, client)),
      );
      expect(results.filter((r) => r.status === "fulfilled")).toHaveLength(1);
    });
  });
}

loginSuite("embedded in-memory store", () => ({}));

describeWithRedis("with Redis", (redis) => {
  loginSuite("Redis", () => ({ REDIS_URL: redis.url }));
});
