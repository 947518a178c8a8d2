import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { EnvReader } from "../src/env-reader.js";
import { SmsError } from "../src/login/failures.js";
import type { SmsSender } from "../src/login/ports.js";
import { readSmsConfig } from "../src/sms/config.js";
import { createSmsSender } from "../src/sms/factory.js";
import { SMS_PROVIDERS } from "../src/sms/registry.js";
import { type ProviderHarness, startHarness } from "./support/sms-provider-harness.js";

const quiet = { info() {}, warn() {}, error() {} };

// Every registered provider, as the service builds it (variables, readSmsConfig, createSmsSender), against its
// harness in test/support/sms-providers/: a provider added to the registry is held to this contract at once.
describe.each(SMS_PROVIDERS.map((p) => p.name))("SmsSender contract: %s", (name) => {
  let harness: ProviderHarness;
  let sms: SmsSender;
  beforeAll(async () => {
    harness = await startHarness(name);
    const r = new EnvReader({ SMS_PROVIDER: name, APP_NAME: "Contract", ...harness.env });
    const cfg = readSmsConfig(r);
    expect(r.problems).toEqual([]);
    sms = createSmsSender(cfg, quiet, harness.deps);
  });
  afterAll(async () => {
    await harness?.close();
  });

  it("delivers the code to the number and returns a receipt naming the provider", async () => {
    const to = "+919812345678";
    const code = String(100_000 + Math.floor(Math.random() * 900_000));
    const receipt = await sms.send({
      to,
      code,
      text: `${code} is your Contract code. It expires in 10 minutes.`,
    });
    expect(receipt.provider).toBe(name);
    expect(receipt.id).not.toBe("");
    expect(harness.delivered(to)).toBe(code);
  });

  it("returns distinct ids for distinct messages", async () => {
    const m = { to: "+919812345679", code: "246810", text: "246810 is your Contract code." };
    const [a, b] = await Promise.all([sms.send(m), sms.send(m)]);
    expect(a.id).not.toBe(b.id);
  });

  it("throws only SmsError", async () => {
    // A number that is not E.164 is refused by every provider; one that sends it anyway fails the count.
    expect.assertions(2);
    await sms.send({ to: "12345", code: "1234", text: "1234" }).catch((err: unknown) => {
      expect(err).toBeInstanceOf(SmsError);
      expect(err).toMatchObject({ kind: "invalid_number", provider: name });
    });
  });
});
