import twilio from "twilio";
import { afterAll, beforeAll, expect, it } from "vitest";
import { type RunningApp, startApp } from "./support/app.js";
import { uniquePhone } from "./support/capture-sms.js";
import { type FakeMsg91, startFakeMsg91 } from "./support/fake-msg91.js";
import { type FakeTwilio, startFakeTwilio } from "./support/fake-twilio.js";
import { describeWithRedis } from "./support/redis.js";

const CALLBACK_URL = "https://otp.example.com/webhooks/twilio/status";

/**
 * The whole service with its real SMS providers (the twilio SDK, MSG91 over fetch) pointed at local fakes of
 * their APIs: the code is read from what the fake received, as a user reads it from their phone.
 */
describeWithRedis("login with real SMS providers against their local fakes", (redis) => {
  let fakeTwilio: FakeTwilio;
  let fakeMsg91: FakeMsg91;
  let s: RunningApp;

  beforeAll(async () => {
    [fakeTwilio, fakeMsg91] = await Promise.all([startFakeTwilio(), startFakeMsg91()]);
    s = await startApp(
      {
        REDIS_URL: redis.url,
        SMS_PROVIDER: "twilio",
        TWILIO_ACCOUNT_SID: fakeTwilio.accountSid,
        TWILIO_AUTH_TOKEN: fakeTwilio.authToken,
        TWILIO_PHONE_NUMBER: "+15005550006",
        TWILIO_API_BASE_URL: fakeTwilio.baseUrl,
        TWILIO_STATUS_CALLBACK_URL: CALLBACK_URL,
        SMS_FALLBACK_PROVIDER: "msg91",
        MSG91_AUTH_KEY: fakeMsg91.authKey,
        MSG91_TEMPLATE_ID: fakeMsg91.templateId,
        MSG91_API_BASE_URL: fakeMsg91.baseUrl,
        SMS_TIMEOUT_MS: "2000",
        // The breaker must not open during the failover cases below.
        SMS_BREAKER_FAILURES: "100",
        APP_NAME: "Acme",
      },
      { configuredSms: true },
    );
  });
  afterAll(async () => {
    await s?.close();
    await Promise.all([fakeTwilio?.close(), fakeMsg91?.close()]);
  });

  const post = (path: string, body: unknown) =>
    fetch(`${s.baseUrl}${path}`, {
      method: "POST",
      headers: { "content-type": "application/json" },
      body: JSON.stringify(body),
    });

  const twilioCode = (phone: string) => {
    const msg = fakeTwilio.messages.findLast((m) => m.to === phone);
    const code = msg ? /\b(\d{6})\b/.exec(msg.body)?.[1] : undefined;
    if (!code) throw new Error(`no code reached the fake Twilio for ${phone}`);
    return code;
  };

  it("send-otp goes out through Twilio with the configured text, and the received code logs in", async () => {
    fakeTwilio.behave({ kind: "normal" });
    const phone = uniquePhone();
    expect((await post("/api/v1/auth/send-otp", { phone })).status).toBe(200);
    const msg = fakeTwilio.messages.findLast((m) => m.to === phone);
    expect(msg?.from).toBe("+15005550006");
    expect(msg?.body).toMatch(/is your Acme code\. It expires in 10 minutes/);
    const res = await post("/api/v1/auth/verify-otp", { phone, otp: twilioCode(phone) });
    expect(res.status).toBe(200);
    expect(((await res.json()) as { user: { phone: string } }).user.phone).toBe(phone);
  });

  it("fails over to MSG91 with the same code when Twilio is down", async () => {
    fakeTwilio.behave({ kind: "down" });
    try {
      const phone = uniquePhone();
      expect((await post("/api/v1/auth/send-otp", { phone })).status).toBe(200);
      const viaMsg91 = fakeMsg91.messages.findLast((m) => m.mobiles === phone.slice(1));
      const otp = viaMsg91?.variables.otp;
      expect(otp).toMatch(/^\d{6}$/);
      expect((await post("/api/v1/auth/verify-otp", { phone, otp })).status).toBe(200);
    } finally {
      fakeTwilio.behave({ kind: "normal" });
    }
  });

  it("when no provider can send: 503, and no code is left that nobody received", async () => {
    const phone = uniquePhone();
    const lonely = uniquePhone();
    expect((await post("/api/v1/auth/send-otp", { phone })).status).toBe(200);
    const earlier = twilioCode(phone);
    fakeTwilio.behave({ kind: "down" });
    fakeMsg91.behave({ kind: "down" });
    try {
      for (const p of [phone, lonely]) {
        const res = await post("/api/v1/auth/send-otp", { phone: p });
        expect(res.status).toBe(503);
        expect(((await res.json()) as { message: string }).message).toMatch(/could not send the code/);
      }
    } finally {
      fakeTwilio.behave({ kind: "normal" });
      fakeMsg91.behave({ kind: "normal" });
    }
    // The unsent codes were deleted: a phone with no earlier code has nothing live.
    const none = await post("/api/v1/auth/verify-otp", { phone: lonely, otp: "123456" });
    expect(((await none.json()) as { reason: string }).reason).toBe("OTP_EXPIRED");
    // The earlier code did reach the phone, and stays valid (a late code).
    expect((await post("/api/v1/auth/verify-otp", { phone, otp: earlier })).status).toBe(200);
  });

  it("an invalid number is refused as the user's fault, with no failover", async () => {
    const before = fakeMsg91.requests;
    const res = await post("/api/v1/auth/send-otp", { phone: "+15005550001" });
    expect(res.status).toBe(400);
    expect(fakeMsg91.requests).toBe(before);
  });

  it("counts signed delivery callbacks at /webhooks/twilio/status and refuses unsigned ones", async () => {
    const form = { MessageSid: "SM123", MessageStatus: "delivered" };
    const body = new URLSearchParams(form).toString();
    const signature = twilio.getExpectedTwilioSignature(fakeTwilio.authToken, CALLBACK_URL, form);
    const send = (sig: string) =>
      fetch(`${s.baseUrl}/webhooks/twilio/status`, {
        method: "POST",
        headers: { "content-type": "application/x-www-form-urlencoded", "x-twilio-signature": sig },
        body,
      });
    expect((await send(signature)).status).toBe(204);
    expect((await send("forged")).status).toBe(403);
    const metrics = await (await fetch(`${s.baseUrl}/metrics`)).text();
    expect(metrics).toMatch(/otp_auth_sms_delivery_status_total\{status="delivered"\} [1-9]/);
    expect(metrics).toMatch(/otp_auth_sms_delivery_status_total\{status="rejected"\} [1-9]/);
    expect(metrics).toMatch(/otp_auth_sms_sends_total\{provider="twilio",outcome="sent"\} [1-9]/);
    // The counter is this app's own: no other app in the process adds to it.
    expect(s.app.deliveryStatus.snapshot()).toMatchObject({ byStatus: { delivered: 1 }, rejected: 1 });
  });

  it("answers a replayed signed callback 204 but counts it once, on every instance sharing the Redis", async () => {
    const form = { MessageSid: `SM${"5".repeat(32)}`, MessageStatus: "undelivered", ErrorCode: "30007" };
    const signature = twilio.getExpectedTwilioSignature(fakeTwilio.authToken, CALLBACK_URL, form);
    const replay = (base: string) =>
      fetch(`${base}/webhooks/twilio/status`, {
        method: "POST",
        headers: { "content-type": "application/x-www-form-urlencoded", "x-twilio-signature": signature },
        body: new URLSearchParams(form).toString(),
      });
    const series = async (base: string, status: string) => {
      const text = await (await fetch(`${base}/metrics`)).text();
      const line = text
        .split("\n")
        .find((l) => l.startsWith(`otp_auth_sms_delivery_status_total{status="${status}"} `));
      return Number(line?.split(" ")[1]);
    };
    const before = await series(s.baseUrl, "undelivered");
    for (let i = 0; i < 3; i++) expect((await replay(s.baseUrl)).status).toBe(204);
    expect(await series(s.baseUrl, "undelivered")).toBe(before + 1);
    expect(await series(s.baseUrl, "duplicate")).toBe(2);

    // Another instance behind the same load balancer knows it was counted: the record is in Redis.
    const other = await startApp(
      {
        REDIS_URL: redis.url,
        TWILIO_ACCOUNT_SID: fakeTwilio.accountSid,
        TWILIO_AUTH_TOKEN: fakeTwilio.authToken,
        TWILIO_PHONE_NUMBER: "+15005550006",
        TWILIO_STATUS_CALLBACK_URL: CALLBACK_URL,
        SMS_PROVIDER: "twilio",
        TWILIO_API_BASE_URL: fakeTwilio.baseUrl,
      },
      { configuredSms: true },
    );
    try {
      expect((await replay(other.baseUrl)).status).toBe(204);
      expect(await series(other.baseUrl, "undelivered")).toBe(0);
      expect(await series(other.baseUrl, "duplicate")).toBe(1);
    } finally {
      await other.close();
    }
  });
});
