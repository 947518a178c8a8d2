import { randomBytes } from "node:crypto";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { newVerificationId } from "../src/login/verifications.js";
import { MemoryOtpStore } from "../src/otp/memory-store.js";
import { type RunningApp, startApp } from "./support/app.js";
import { uniquePhone } from "./support/capture-sms.js";
import { describeWithRedis } from "./support/redis.js";

/**
 * OTP_SECRET_PREVIOUS, with instances of each stage of a rotation sharing one Redis as a rolling deploy has
 * them: codes sent under the old secret verify on the new instances until they expire; new codes are stored
 * under the new secret only.
 */
describeWithRedis("OTP secret rotation", (redis) => {
  const [oldSecret, newSecret] = [randomBytes(32).toString("base64"), randomBytes(32).toString("base64")];
  let before: RunningApp;
  let during: RunningApp;
  let after: RunningApp;
  beforeAll(async () => {
    [before, during, after] = await Promise.all([
      startApp({ REDIS_URL: redis.url, OTP_SECRET: oldSecret }),
      startApp({ REDIS_URL: redis.url, OTP_SECRET: newSecret, OTP_SECRET_PREVIOUS: oldSecret }),
      startApp({ REDIS_URL: redis.url, OTP_SECRET: newSecret }),
    ]);
  });
  afterAll(() => Promise.all([before?.close(), during?.close(), after?.close()]));

  const post = async (app: RunningApp, path: string, body: unknown) => {
    const res = await fetch(`${app.baseUrl}/api/v1/auth/${path}`, {
      method: "POST",
      headers: { "content-type": "application/json" },
      body: JSON.stringify(body),
    });
    return { status: res.status, body: (await res.json()) as Record<string, unknown> };
  };
  const sendOn = async (app: RunningApp) => {
    const phone = uniquePhone();
    expect((await post(app, "send-otp", { phone })).status).toBe(200);
    return { phone, otp: app.sms.lastCode(phone) };
  };

  it("a code sent under the previous secret verifies on an instance that has it as OTP_SECRET_PREVIOUS", async () => {
    const code = await sendOn(before);
    expect((await post(during, "verify-otp", code)).status).toBe(200);
  });

  it("without OTP_SECRET_PREVIOUS the old code is simply wrong (what the variable prevents)", async () => {
    const code = await sendOn(before);
    expect(await post(after, "verify-otp", code)).toMatchObject({
      status: 401,
      body: { reason: "OTP_INCORRECT" },
    });
    // It counted as one wrong try, and the instance that knows the old secret still takes it.
    expect((await post(during, "verify-otp", code)).status).toBe(200);
  });

  it("new codes are stored under the current secret only", async () => {
    const code = await sendOn(during);
    expect(await post(before, "verify-otp", code)).toMatchObject({
      status: 401,
      body: { reason: "OTP_INCORRECT" },
    });
    expect((await post(after, "verify-otp", code)).status).toBe(200);
  });

  it("a wrong code is still wrong under either secret", async () => {
    const { phone, otp } = await sendOn(before);
    const wrong = otp === "000000" ? "111111" : "000000";
    expect(await post(during, "verify-otp", { phone, otp: wrong })).toMatchObject({
      status: 401,
      body: { reason: "OTP_INCORRECT", metadata: { attempts_left: "4" } },
    });
  });
});

describe("MemoryOtpStore with two digests", () => {
  it("matches either, consumes the code once, and counts a miss of both as one wrong try", async () => {
    const store = new MemoryOtpStore();
    await store.put("+919876543210", "old-digest", 60, {
      verificationId: newVerificationId(),
      maxAttempts: 5,
      retentionSeconds: 60,
      maskedPhone: "+91******3210",
    });
    expect(await store.verify("+919876543210", ["new-miss", "old-miss"], 5)).toMatchObject({
      kind: "wrong",
      attemptsLeft: 4,
    });
    expect(await store.verify("+919876543210", ["new-digest", "old-digest"], 5)).toMatchObject({
      kind: "ok",
    });
    expect(await store.verify("+919876543210", ["new-digest", "old-digest"], 5)).toEqual({ kind: "missing" });
  });
});
