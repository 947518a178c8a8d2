import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { EnvReader } from "../src/env-reader.js";
import { readSmsConfig } from "../src/sms/config.js";
import { SmsError } from "../src/sms/errors.js";
import { createSmsSender } from "../src/sms/factory.js";
import type { SmsSender } from "../src/sms/sender.js";
import { type FakeMsg91, startFakeMsg91 } from "./support/fake-msg91.js";
import { type FakeTwilio, startFakeTwilio } from "./support/fake-twilio.js";

/** One provider as the service builds it, plus a way to read what reached the phone. */
interface Harness {
  readonly sms: SmsSender;
  /** The code the phone at `to` last received. */
  delivered(to: string): string | undefined;
}

let twilio: FakeTwilio;
let msg91: FakeMsg91;
beforeAll(async () => {
  [twilio, msg91] = await Promise.all([startFakeTwilio(), startFakeMsg91()]);
});
afterAll(async () => {
  await Promise.all([twilio.close(), msg91.close()]);
});

const quiet = { info() {}, warn() {}, error() {} };

function build(env: Record<string, string>, print?: (line: string) => void): SmsSender {
  const r = new EnvReader({ APP_NAME: "Contract", ...env });
  const cfg = readSmsConfig(r);
  expect(r.problems).toEqual([]);
  return createSmsSender(cfg, quiet, print ? { print } : {});
}

const harnesses: Record<string, () => Harness> = {
  development() {
    const lines: string[] = [];
    const sms = build({ SMS_PROVIDER: "development" }, (line) => lines.push(line));
    return {
      sms,
      delivered: (to) =>
        lines
          .findLast((l) => l.includes(`OTP for ${to}:`))
          ?.split(": ")
          .at(-1),
    };
  },
  twilio() {
    const sms = build({
      SMS_PROVIDER: "twilio",
      TWILIO_ACCOUNT_SID: twilio.accountSid,
      TWILIO_AUTH_TOKEN: twilio.authToken,
      TWILIO_MESSAGING_SERVICE_SID: `MG${"c".repeat(32)}`,
      TWILIO_API_BASE_URL: twilio.baseUrl,
    });
    return { sms, delivered: (to) => twilio.messages.findLast((m) => m.to === to)?.body.split(" ")[0] };
  },
  msg91() {
    const sms = build({
      SMS_PROVIDER: "msg91",
      MSG91_AUTH_KEY: msg91.authKey,
      MSG91_TEMPLATE_ID: msg91.templateId,
      MSG91_API_BASE_URL: msg91.baseUrl,
    });
    return { sms, delivered: (to) => msg91.messages.findLast((m) => `+${m.mobiles}` === to)?.variables.otp };
  },
};

describe.each(Object.keys(harnesses))("SmsSender contract: %s", (name) => {
  it("delivers the code to the number and returns a receipt naming the provider", async () => {
    const h = harnesses[name]?.();
    if (!h) throw new Error(name);
    const to = "+919812345678";
    const code = String(100_000 + Math.floor(Math.random() * 900_000));
    const receipt = await h.sms.send({
      to,
      code,
      text: `${code} is your Contract code. It expires in 10 minutes.`,
    });
    expect(receipt.provider).toBe(name);
    expect(receipt.id).not.toBe("");
    expect(h.delivered(to)).toBe(code);
  });

  it("returns distinct ids for distinct messages", async () => {
    const h = harnesses[name]?.();
    if (!h) throw new Error(name);
    const m = { to: "+919812345679", code: "246810", text: "246810 is your Contract code." };
    const [a, b] = await Promise.all([h.sms.send(m), h.sms.send(m)]);
    expect(a.id).not.toBe(b.id);
  });

  it("throws only SmsError", async () => {
    const h = harnesses[name]?.();
    if (!h) throw new Error(name);
    // Not every provider refuses this number (development accepts anything); those that refuse use SmsError.
    await h.sms.send({ to: "+15005550001", code: "1234", text: "1234" }).then(
      () => {},
      (err: unknown) => expect(err).toBeInstanceOf(SmsError),
    );
  });
});
