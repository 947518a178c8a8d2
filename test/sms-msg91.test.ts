import type { AddressInfo } from "node:net";
import { createServer } from "node:net";
import { afterAll, beforeAll, beforeEach, describe, expect, it } from "vitest";
import { EnvReader } from "../src/env-reader.js";
import { SmsError } from "../src/login/failures.js";
import { readSmsConfig, settingsOf } from "../src/sms/config.js";
import { classifyMsg91Failure, Msg91SmsSender } from "../src/sms/msg91/msg91.js";
import { msg91Provider } from "../src/sms/msg91/provider.js";
import { type FakeMsg91, startFakeMsg91 } from "./support/fake-msg91.js";

const TO = "+919876543210";

let fake: FakeMsg91;
beforeAll(async () => {
  fake = await startFakeMsg91();
});
afterAll(async () => {
  await fake.close();
});
beforeEach(() => {
  fake.behave({ kind: "normal" });
});

/** A sender built the way the service builds it: from environment variables, through readSmsConfig. */
function sender(env: Record<string, string | undefined> = {}): Msg91SmsSender {
  const r = new EnvReader({
    SMS_PROVIDER: "msg91",
    MSG91_AUTH_KEY: fake.authKey,
    MSG91_TEMPLATE_ID: fake.templateId,
    MSG91_API_BASE_URL: fake.baseUrl,
    ...env,
  });
  const cfg = readSmsConfig(r);
  expect(r.problems).toEqual([]);
  const settings = settingsOf(cfg, msg91Provider);
  if (!settings) throw new Error("no msg91 config");
  return new Msg91SmsSender({ ...settings, timeoutMs: cfg.timeoutMs });
}

async function failure(p: Promise<unknown>): Promise<SmsError> {
  const err = await p.then(
    () => undefined,
    (e: unknown) => e,
  );
  expect(err).toBeInstanceOf(SmsError);
  return err as SmsError;
}

function message(to = TO, code = "731904") {
  return { to, code, text: `${code} is your Test App code. It expires in 10 minutes. Don't share it.` };
}

describe("MSG91 v5 Flow API against the fake", () => {
  it("sends the DLT template with the code and returns MSG91's request id", async () => {
    const receipt = await sender().send(message());
    const sent = fake.messages.at(-1);
    expect(receipt).toEqual({ provider: "msg91", id: sent?.requestId });
    expect(sent).toMatchObject({
      templateId: fake.templateId,
      mobiles: "919876543210",
      variables: { otp: "731904" },
      shortUrl: "0",
    });
  });

  it("sends the key in the authkey header, never in the URL", async () => {
    await sender().send(message());
    expect(fake.urls.length).toBeGreaterThan(0);
    for (const url of fake.urls) expect(url).not.toContain(fake.authKey);
  });

  it("puts the code in the variable MSG91_OTP_VARIABLE names", async () => {
    const other = await startFakeMsg91({ codeVariable: "var1" });
    try {
      const s = new Msg91SmsSender({
        authKey: other.authKey,
        templateId: other.templateId,
        codeVariable: "var1",
        apiBaseUrl: other.baseUrl,
        timeoutMs: 5000,
      });
      await s.send(message());
      expect(other.messages.at(-1)?.variables).toEqual({ var1: "731904" });
    } finally {
      await other.close();
    }
  });

  it("a number MSG91 refuses (HTTP 200, type error) is invalid_number", async () => {
    const err = await failure(sender().send(message("+15551234567")));
    expect(err.kind).toBe("invalid_number");
    expect(err.message).toMatch(/not valid/);
  });

  it("a number that is not E.164 is invalid_number without a request", async () => {
    const requests = fake.requests;
    const err = await failure(sender().send(message("9876543210")));
    expect(err.kind).toBe("invalid_number");
    expect(fake.requests).toBe(requests);
  });

  it("a wrong auth key is our_config, naming the variable and never the key", async () => {
    const key = "not-the-key-0123456789";
    const err = await failure(sender({ MSG91_AUTH_KEY: key }).send(message()));
    expect(err.kind).toBe("our_config");
    expect(err.detail).toMatch(/MSG91_AUTH_KEY/);
    expect(`${err.message} ${err.detail}`).not.toContain(key);
  });

  it("an unapproved template (HTTP 200, type error) is our_config pointing at MSG91_TEMPLATE_ID", async () => {
    const err = await failure(sender({ MSG91_TEMPLATE_ID: "0000aaaa0000aaaa0000aaaa" }).send(message()));
    expect(err.kind).toBe("our_config");
    expect(err.detail).toMatch(/MSG91_TEMPLATE_ID/);
  });

  it("any HTTP 200 answer of type error is a failure, not a receipt", async () => {
    fake.behave({ kind: "error", message: "Something unexpected" });
    const err = await failure(sender().send(message()));
    expect(err.kind).toBe("our_config");
    expect(err.detail).toContain("Something unexpected");
  });

  it.each([500, 502, 503])("HTTP %i (with an HTML body) is provider_down", async (status) => {
    fake.behave({ kind: "down", status });
    const err = await failure(sender().send(message()));
    expect(err.kind).toBe("provider_down");
  });

  it("connection refused is provider_down", async () => {
    const port = await closedPort();
    const err = await failure(sender({ MSG91_API_BASE_URL: `http://127.0.0.1:${port}` }).send(message()));
    expect(err.kind).toBe("provider_down");
    expect(err.detail).toMatch(/ECONNREFUSED/);
  });

  it("a hanging API fails as provider_down once SMS_TIMEOUT_MS has passed", async () => {
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
});

describe("classifyMsg91Failure", () => {
  it.each([
    [401, { type: "error", message: "Authentication failure" }, "our_config"],
    [418, { type: "error", message: "IP not whitelisted" }, "our_config"],
    [200, { type: "error", message: "Insufficient balance" }, "our_config"],
    [200, { type: "error", message: "Flow not found" }, "our_config"],
    [200, { type: "error", message: "Invalid mobile number" }, "invalid_number"],
    [429, { type: "error", message: "Too many requests" }, "provider_down"],
    [503, undefined, "provider_down"],
    [200, undefined, "provider_down"],
  ] as const)("HTTP %i %j is %s", (status, answer, kind) => {
    expect(classifyMsg91Failure(status, answer).kind).toBe(kind);
  });
});

async function closedPort(): Promise<number> {
  const srv = createServer();
  await new Promise<void>((resolve) => srv.listen(0, "127.0.0.1", resolve));
  const { port } = srv.address() as AddressInfo;
  await new Promise<void>((resolve) => srv.close(() => resolve()));
  return port;
}
