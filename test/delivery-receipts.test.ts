import twilio from "twilio";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { type RunningApp, startApp } from "./support/app.js";
import { uniquePhone } from "./support/capture-sms.js";
import { type FakeMsg91, startFakeMsg91 } from "./support/fake-msg91.js";
import { type FakeTwilio, startFakeTwilio } from "./support/fake-twilio.js";
import { describeWithRedis } from "./support/redis.js";
import { until } from "./support/wait.js";

const CALLBACK_URL = "https://otp.example.com/webhooks/twilio/status";
const DLR_SECRET = "d".repeat(40);

/**
 * Delivery receipts end to end: the real webhook routes, the real providers' clients against their local fakes,
 * and the receipt landing on the send attempt it belongs to, in GetVerification and /metrics.
 */
describeWithRedis("delivery receipts through the real webhook routes", (redis) => {
  let fakeTwilio: FakeTwilio;
  let fakeMsg91: FakeMsg91;
  let s: RunningApp;

  beforeAll(async () => {
    [fakeTwilio, fakeMsg91] = await Promise.all([startFakeTwilio(), startFakeMsg91()]);
    s = await startApp(
      {
        REDIS_URL: redis.url,
        SMS_PROVIDER: "msg91",
        MSG91_AUTH_KEY: fakeMsg91.authKey,
        MSG91_TEMPLATE_ID: fakeMsg91.templateId,
        MSG91_API_BASE_URL: fakeMsg91.baseUrl,
        MSG91_DLR_SECRET: DLR_SECRET,
        SMS_FALLBACK_PROVIDER: "twilio",
        TWILIO_ACCOUNT_SID: fakeTwilio.accountSid,
        TWILIO_AUTH_TOKEN: fakeTwilio.authToken,
        TWILIO_PHONE_NUMBER: "+15005550006",
        TWILIO_API_BASE_URL: fakeTwilio.baseUrl,
        TWILIO_STATUS_CALLBACK_URL: CALLBACK_URL,
        SMS_REROUTE_UNDELIVERED: "true",
        SMS_TIMEOUT_MS: "2000",
      },
      { configuredSms: true },
    );
  });
  afterAll(async () => {
    await s?.close();
    await Promise.all([fakeTwilio?.close(), fakeMsg91?.close()]);
  });

  const send = async (phone: string): Promise<string> => {
    const res = await fetch(`${s.baseUrl}/api/v1/auth/send-otp`, {
      method: "POST",
      headers: { "content-type": "application/json" },
      body: JSON.stringify({ phone }),
    });
    expect(res.status).toBe(200);
    return String(((await res.json()) as { verification_id: string }).verification_id);
  };
  const verification = async (id: string) => {
    const res = await fetch(`${s.baseUrl}/api/v1/auth/verifications/${id}`);
    return (await res.json()) as {
      status: string;
      send_attempts: { provider: string; message_id: string; delivery_status: string; error_code: string }[];
    };
  };
  const dlr = (secret: string, requestId: string, status: string, desc: string) =>
    fetch(`${s.baseUrl}/webhooks/msg91/dlr/${secret}`, {
      method: "POST",
      headers: { "content-type": "application/x-www-form-urlencoded" },
      body: new URLSearchParams({
        data: JSON.stringify([
          { requestId, userId: "1", senderId: "ACME", report: [{ number: "91", status, desc, date: "" }] },
        ]),
      }).toString(),
    });
  const twilioCallback = (sid: string, status: string, token = fakeTwilio.authToken, errorCode = "") => {
    const params: Record<string, string> = {
      MessageSid: sid,
      SmsSid: sid,
      MessageStatus: status,
      SmsStatus: status,
      AccountSid: fakeTwilio.accountSid,
      ...(errorCode ? { ErrorCode: errorCode } : {}),
    };
    return fetch(`${s.baseUrl}/webhooks/twilio/status`, {
      method: "POST",
      headers: {
        "content-type": "application/x-www-form-urlencoded",
        "x-twilio-signature": twilio.getExpectedTwilioSignature(token, CALLBACK_URL, params),
      },
      body: new URLSearchParams(params).toString(),
    });
  };
  const metrics = async () => (await fetch(`${s.baseUrl}/metrics`)).text();

  it("an MSG91 report with the wrong secret is 404 and changes nothing", async () => {
    const phone = uniquePhone();
    const id = await send(phone);
    const requestId = fakeMsg91.messages.at(-1)?.requestId ?? "";
    expect((await dlr("x".repeat(40), requestId, "2", "failed")).status).toBe(404);
    expect((await verification(id)).send_attempts).toEqual([
      expect.objectContaining({ provider: "msg91", message_id: requestId, delivery_status: "sent" }),
    ]);
    expect(fakeTwilio.messages.filter((m) => m.to === phone)).toHaveLength(0);
  });

  it("an MSG91 delivered report updates its send attempt and the metrics", async () => {
    const id = await send(uniquePhone());
    const requestId = fakeMsg91.messages.at(-1)?.requestId ?? "";
    expect((await dlr(DLR_SECRET, requestId, "1", "DELIVERED")).status).toBe(200);
    expect((await verification(id)).send_attempts[0]).toMatchObject({ delivery_status: "delivered" });
    expect(await metrics()).toMatch(
      /otp_auth_sms_delivery_receipts_total\{provider="msg91",country="IN",status="delivered"\} [1-9]/,
    );
  });

  it("undelivered while pending: exactly one fresh code through the fallback, recorded as a second attempt", async () => {
    const phone = uniquePhone();
    const id = await send(phone);
    const requestId = fakeMsg91.messages.at(-1)?.requestId ?? "";
    expect((await dlr(DLR_SECRET, requestId, "9", "NDNC")).status).toBe(200);
    const v = await until(async () => {
      const seen = await verification(id);
      return seen.send_attempts.length === 2 ? seen : undefined;
    });
    expect(v.status).toBe("pending");
    expect(v.send_attempts[0]).toMatchObject({
      provider: "msg91",
      delivery_status: "undelivered",
      error_code: "9",
    });
    expect(v.send_attempts[1]).toMatchObject({ provider: "twilio", delivery_status: "sent" });
    expect(fakeTwilio.messages.filter((m) => m.to === phone)).toHaveLength(1);

    // The same report again, and a failed receipt for the reroute itself: no third SMS.
    await dlr(DLR_SECRET, requestId, "9", "NDNC");
    const sid = v.send_attempts[1]?.message_id ?? "";
    expect((await twilioCallback(sid, "undelivered", fakeTwilio.authToken, "30007")).status).toBe(204);
    expect((await verification(id)).send_attempts).toHaveLength(2);
    expect(fakeTwilio.messages.filter((m) => m.to === phone)).toHaveLength(1);
    expect((await verification(id)).send_attempts[1]).toMatchObject({
      delivery_status: "undelivered",
      error_code: "30007",
    });
  });

  it("a Twilio callback with a bad signature is refused and changes nothing; a signed one lands", async () => {
    const phone = uniquePhone();
    const id = await send(phone);
    await dlr(DLR_SECRET, fakeMsg91.messages.at(-1)?.requestId ?? "", "2", "failed");
    const v = await until(async () => {
      const seen = await verification(id);
      return seen.send_attempts.length === 2 ? seen : undefined;
    });
    const sid = v.send_attempts[1]?.message_id ?? "";
    expect((await twilioCallback(sid, "delivered", "y".repeat(32))).status).toBe(403);
    expect((await verification(id)).send_attempts[1]).toMatchObject({ delivery_status: "sent" });
    expect((await twilioCallback(sid, "delivered")).status).toBe(204);
    expect((await verification(id)).send_attempts[1]).toMatchObject({ delivery_status: "delivered" });
  });

  describe("receipts after the verification ended", () => {
    it("do not reroute an approved verification", async () => {
      const phone = uniquePhone();
      const id = await send(phone);
      const msg = fakeMsg91.messages.at(-1);
      const code = String(Object.values(msg?.variables ?? {})[0]);
      const ok = await fetch(`${s.baseUrl}/api/v1/auth/verify-otp`, {
        method: "POST",
        headers: { "content-type": "application/json" },
        body: JSON.stringify({ phone, otp: code }),
      });
      expect(ok.status).toBe(200);
      await dlr(DLR_SECRET, msg?.requestId ?? "", "2", "failed");
      expect((await verification(id)).send_attempts).toHaveLength(1);
      expect(fakeTwilio.messages.filter((m) => m.to === phone)).toHaveLength(0);
    });
  });
});
