import type { AddressInfo } from "node:net";
import { createServer } from "node:net";
import { afterAll, beforeAll, beforeEach, describe, expect, it } from "vitest";
import { EnvReader } from "../src/env-reader.js";
import { SmsError } from "../src/login/failures.js";
import { readSmsConfig, settingsOf } from "../src/sms/config.js";
import { twilioProvider } from "../src/sms/twilio/provider.js";
import { twilioSdk } from "../src/sms/twilio/sdk.js";
import { TwilioSmsSender } from "../src/sms/twilio/twilio.js";
import { classifyTwilioError } from "../src/sms/twilio/twilio-errors.js";
import { createTwilioHttpClient, withSendSignal } from "../src/sms/twilio/twilio-http-client.js";
import { type FakeTwilio, startFakeTwilio } from "./support/fake-twilio.js";

const SERVICE_SID = `MG${"a1".repeat(16)}`;
const FROM = "+15005550006";
const TO = "+919876543210";

let fake: FakeTwilio;
beforeAll(async () => {
  fake = await startFakeTwilio();
});
afterAll(async () => {
  await fake.close();
});
beforeEach(() => {
  fake.behave({ kind: "normal" });
  fake.verifyOnly(undefined);
});

/** A sender built the way the service builds it: from environment variables, through readSmsConfig. */
function sender(env: Record<string, string | undefined> = {}): TwilioSmsSender {
  const r = new EnvReader({
    SMS_PROVIDER: "twilio",
    TWILIO_ACCOUNT_SID: fake.accountSid,
    TWILIO_AUTH_TOKEN: fake.authToken,
    TWILIO_PHONE_NUMBER: FROM,
    TWILIO_API_BASE_URL: fake.baseUrl,
    ...env,
  });
  const cfg = readSmsConfig(r);
  expect(r.problems).toEqual([]);
  const settings = settingsOf(cfg, twilioProvider);
  if (!settings) throw new Error("no twilio config");
  return new TwilioSmsSender({ ...settings, timeoutMs: cfg.timeoutMs });
}

async function failure(p: Promise<unknown>): Promise<SmsError> {
  const err = await p.then(
    () => undefined,
    (e: unknown) => e,
  );
  expect(err).toBeInstanceOf(SmsError);
  return err as SmsError;
}

function message(to = TO, code = "482913") {
  return { to, code, text: `${code} is your Test App code. It expires in 10 minutes. Don't share it.` };
}

describe("Twilio through the SDK against the fake API", () => {
  it("sends from the phone number and returns Twilio's message SID", async () => {
    const before = fake.messages.length;
    const receipt = await sender().send(message());
    const sent = fake.messages.at(-1);
    expect(fake.messages.length).toBe(before + 1);
    expect(receipt).toEqual({ provider: "twilio", id: sent?.sid });
    expect(receipt.id).toMatch(/^SM[0-9a-f]{32}$/);
    expect(sent).toMatchObject({ to: TO, from: FROM, messagingServiceSid: undefined });
    // The code reaches the phone in the text.
    expect(sent?.body).toBe(message().text);
    expect(sent?.body.match(/^(\d{6}) /)?.[1]).toBe("482913");
  });

  it("prefers the Messaging Service when both it and a phone number are set", async () => {
    await sender({ TWILIO_MESSAGING_SERVICE_SID: SERVICE_SID }).send(message());
    expect(fake.messages.at(-1)).toMatchObject({ messagingServiceSid: SERVICE_SID, from: undefined });
  });

  it("asks for status callbacks when TWILIO_STATUS_CALLBACK_URL is set", async () => {
    const url = "https://auth.example.com/webhooks/twilio/status";
    await sender({ TWILIO_STATUS_CALLBACK_URL: url }).send(message());
    expect(fake.messages.at(-1)?.statusCallback).toBe(url);
  });

  it.each([
    ["+15005550001", "invalid_number", 21211, /not valid/],
    ["+15005550009", "unreachable_number", 21614, /mobile number/],
    ["+15005550004", "unreachable_number", 21610, /STOP/],
    ["+15005550003", "unreachable_number", 21408, /country/],
    ["+15005550002", "unreachable_number", 21612, /cannot receive/],
  ])(
    "a number's fault: %s is %s (Twilio %i) with a message a user understands",
    async (to, kind, code, text) => {
      const err = await failure(sender().send(message(to)));
      expect(err.kind).toBe(kind);
      expect(err.provider).toBe("twilio");
      expect(err.message).toMatch(text);
      expect(err.message).not.toMatch(/twilio|21\d{3}/i);
      expect(err.detail).toContain(String(code));
      // Details go to logs: no full phone number in them.
      expect(err.detail).not.toContain(to);
    },
  );

  it("our fault: a wrong auth token is our_config, naming the variables and never the token", async () => {
    const token = "0123456789abcdef0123456789abcdef";
    const err = await failure(sender({ TWILIO_AUTH_TOKEN: token }).send(message()));
    expect(err.kind).toBe("our_config");
    expect(err.detail).toMatch(/20003/);
    expect(err.detail).toMatch(/TWILIO_ACCOUNT_SID and TWILIO_AUTH_TOKEN/);
    expect(`${err.message} ${err.detail}`).not.toContain(token);
    expect(`${err.message} ${err.detail}`).not.toContain(fake.authToken);
  });

  it("our fault: a trial account sending to an unverified number is our_config with the fix", async () => {
    fake.verifyOnly(["+919000000001"]);
    const err = await failure(sender().send(message()));
    expect(err.kind).toBe("our_config");
    expect(err.detail).toMatch(/21608/);
    expect(err.detail).toMatch(/verif/i);
  });

  it("our fault: a sender that cannot send SMS is our_config", async () => {
    const err = await failure(sender({ TWILIO_PHONE_NUMBER: "+15005550007" }).send(message()));
    expect(err.kind).toBe("our_config");
    expect(err.detail).toMatch(/21606.*TWILIO_PHONE_NUMBER/);
  });

  it.each([500, 502, 503])("provider down: HTTP %i is provider_down", async (status) => {
    fake.behave({ kind: "down", status });
    const err = await failure(sender().send(message()));
    expect(err.kind).toBe("provider_down");
  });

  it("provider down: connection refused is provider_down", async () => {
    const port = await closedPort();
    const err = await failure(sender({ TWILIO_API_BASE_URL: `http://127.0.0.1:${port}` }).send(message()));
    expect(err.kind).toBe("provider_down");
    expect(err.detail).toMatch(/ECONNREFUSED/);
  });

  it("provider down: a hanging API fails as provider_down once SMS_TIMEOUT_MS has passed", async () => {
    fake.behave({ kind: "hang" });
    const started = performance.now();
    const err = await failure(sender({ SMS_TIMEOUT_MS: "300" }).send(message()));
    const elapsed = performance.now() - started;
    expect(err.kind).toBe("provider_down");
    expect(err.detail).toMatch(/SMS_TIMEOUT_MS/);
    expect(elapsed).toBeGreaterThanOrEqual(250);
    // Generous: the bound is there to catch "waits for the socket's default 30 s or forever".
    expect(elapsed).toBeLessThan(10_000);
  });

  it("retries a 429 and succeeds when Twilio stops throttling", async () => {
    fake.behave({ kind: "throttle", times: 2 });
    const requests = fake.requests;
    const receipt = await sender().send(message());
    expect(receipt.id).toMatch(/^SM/);
    expect(fake.requests - requests).toBe(3);
  });

  it("a send's signal reaches the SDK's request: once aborted, nothing more goes to Twilio", async () => {
    // The SDK's client is shared by every send; each send's signal is tied to its own request (and retries).
    const httpClient = createTwilioHttpClient({
      baseUrl: fake.baseUrl,
      timeoutMs: 5_000,
      maxRetries: 0,
      maxRetryDelayMs: 0,
    });
    const messages = twilioSdk()(fake.accountSid, fake.authToken, { httpClient }).messages;
    const params = { to: TO, from: FROM, body: "482913 is your code" };
    const before = fake.requests;
    await expect(withSendSignal(AbortSignal.abort(), () => messages.create(params))).rejects.toThrow(
      /cancel/i,
    );
    expect(fake.requests).toBe(before);
    // A live signal on the same client, and a request outside any send, both go out.
    const live = new AbortController().signal;
    expect((await withSendSignal(live, () => messages.create(params))).sid).toMatch(/^SM/);
    expect((await messages.create(params)).sid).toMatch(/^SM/);
    expect(fake.requests).toBe(before + 2);
  });

  it("gives up on a 429 after bounded retries, as provider_down", async () => {
    fake.behave({ kind: "throttle", times: 1000 });
    const requests = fake.requests;
    const err = await failure(sender().send(message()));
    expect(err.kind).toBe("provider_down");
    expect(err.detail).toMatch(/20429/);
    expect(fake.requests - requests).toBe(3);
  });
});

describe("Twilio errors are classified by code and status, not by class", () => {
  it.each([
    ["legacy body (RestException)", false],
    ["RFC 9457 body (TwilioServiceException)", true],
  ])("reads the %s the same way", async (_, rfc9457) => {
    fake.behave({ kind: "error", status: 400, code: 21211, message: "Invalid 'To' Phone Number", rfc9457 });
    expect((await failure(sender().send(message()))).kind).toBe("invalid_number");
    fake.behave({ kind: "error", status: 401, code: 20003, message: "Authenticate", rfc9457 });
    expect((await failure(sender().send(message()))).kind).toBe("our_config");
    fake.behave({ kind: "error", status: 503, code: 20503, message: "Service Unavailable", rfc9457 });
    expect((await failure(sender().send(message()))).kind).toBe("provider_down");
  });

  it("falls back to the HTTP status for codes it does not know", () => {
    expect(classifyTwilioError({ status: 503, code: 29999 }).kind).toBe("provider_down");
    expect(classifyTwilioError({ status: 429, code: 29998 }).kind).toBe("provider_down");
    expect(classifyTwilioError({ status: 400, code: 29997 }).kind).toBe("our_config");
    expect(classifyTwilioError({ status: 502 }).kind).toBe("provider_down");
  });

  it("treats network errors and timeouts as provider_down", () => {
    for (const code of ["ECONNREFUSED", "ECONNRESET", "ETIMEDOUT", "ECONNABORTED", "ERR_CANCELED"]) {
      expect(classifyTwilioError(Object.assign(new Error("x"), { code })).kind).toBe("provider_down");
    }
    expect(classifyTwilioError(new Error("late"), true).kind).toBe("provider_down");
  });
});

async function closedPort(): Promise<number> {
  const srv = createServer();
  await new Promise<void>((resolve) => srv.listen(0, "127.0.0.1", resolve));
  const { port } = srv.address() as AddressInfo;
  await new Promise<void>((resolve) => srv.close(() => resolve()));
  return port;
}
