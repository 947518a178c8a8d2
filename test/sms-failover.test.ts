import fc from "fast-check";
import { afterAll, beforeAll, beforeEach, describe, expect, it } from "vitest";
import { EnvReader } from "../src/env-reader.js";
import { SmsError } from "../src/login/failures.js";
import type { SmsSender } from "../src/login/ports.js";
import { CircuitBreaker } from "../src/sms/circuit-breaker.js";
import { readSmsConfig } from "../src/sms/config.js";
import { createSmsSender } from "../src/sms/factory.js";
import { NoProviderSentError } from "../src/sms/failover.js";
import { type FakeMsg91, startFakeMsg91 } from "./support/fake-msg91.js";
import { type FakeTwilio, startFakeTwilio } from "./support/fake-twilio.js";

const TO = "+919876543210";

let twilio: FakeTwilio;
let msg91: FakeMsg91;
beforeAll(async () => {
  [twilio, msg91] = await Promise.all([startFakeTwilio(), startFakeMsg91()]);
});
afterAll(async () => {
  await Promise.all([twilio.close(), msg91.close()]);
});
beforeEach(() => {
  twilio.behave({ kind: "normal" });
  msg91.behave({ kind: "normal" });
});

interface Logged {
  readonly level: string;
  readonly msg: string;
  readonly extra: object | undefined;
}

/** The service's sender, from environment variables through readSmsConfig and createSmsSender. */
function build(env: Record<string, string>, now?: () => number): { sms: SmsSender; logged: Logged[] } {
  const r = new EnvReader({
    TWILIO_ACCOUNT_SID: twilio.accountSid,
    TWILIO_AUTH_TOKEN: twilio.authToken,
    TWILIO_PHONE_NUMBER: "+15005550006",
    TWILIO_API_BASE_URL: twilio.baseUrl,
    MSG91_AUTH_KEY: msg91.authKey,
    MSG91_TEMPLATE_ID: msg91.templateId,
    MSG91_API_BASE_URL: msg91.baseUrl,
    APP_NAME: "Test App",
    ...env,
  });
  const cfg = readSmsConfig(r);
  expect(r.problems).toEqual([]);
  const logged: Logged[] = [];
  const log = (level: string) => (msg: string, extra?: object) => logged.push({ level, msg, extra });
  const sms = createSmsSender(
    cfg,
    { info: log("info"), warn: log("warn"), error: log("error") },
    now ? { now } : {},
  );
  return { sms, logged };
}

const TWILIO_THEN_MSG91 = { SMS_PROVIDER: "twilio", SMS_FALLBACK_PROVIDER: "msg91" };
const MSG91_THEN_TWILIO = { SMS_PROVIDER: "msg91", SMS_FALLBACK_PROVIDER: "twilio" };

let codeSeq = 100_000;
function message(to = TO) {
  codeSeq += 1;
  const code = String(codeSeq);
  return { to, code, text: `${code} is your Test App code. It expires in 10 minutes. Don't share it.` };
}

async function failure(p: Promise<unknown>): Promise<SmsError> {
  const err = await p.then(
    () => undefined,
    (e: unknown) => e,
  );
  expect(err).toBeInstanceOf(SmsError);
  return err as SmsError;
}

function counts() {
  return { twilio: twilio.requests, msg91: msg91.requests };
}
function delta(before: { twilio: number; msg91: number }) {
  return { twilio: twilio.requests - before.twilio, msg91: msg91.requests - before.msg91 };
}

describe("failover between providers", () => {
  it("uses only the primary while it works", async () => {
    const { sms } = build(TWILIO_THEN_MSG91);
    const before = counts();
    const receipt = await sms.send(message());
    expect(receipt.provider).toBe("twilio");
    expect(delta(before)).toEqual({ twilio: 1, msg91: 0 });
  });

  it("sends the same code through the fallback when the primary is down", async () => {
    const { sms, logged } = build(TWILIO_THEN_MSG91);
    twilio.behave({ kind: "down" });
    const before = counts();
    const m = { ...message(), requestId: "req-failover-1" };
    const receipt = await sms.send(m);
    expect(receipt).toEqual({ provider: "msg91", id: msg91.messages.at(-1)?.requestId });
    expect(msg91.messages.at(-1)?.variables.otp).toBe(m.code);
    expect(delta(before)).toEqual({ twilio: 1, msg91: 1 });
    // Both lines carry the id of the request that asked for the send.
    const failed = logged.find((l) => l.level === "warn" && l.msg === "sms provider failed");
    expect(failed?.extra).toMatchObject({ reqId: "req-failover-1", provider: "twilio" });
    const fallback = logged.find((l) => l.msg === "sms sent by a fallback provider");
    expect(fallback?.extra).toMatchObject({ reqId: "req-failover-1", provider: "msg91" });
    // Logs carry a masked number, never the full one or the code.
    expect(JSON.stringify(logged)).not.toContain(TO);
    expect(JSON.stringify(logged)).not.toContain(m.code);
  });

  it("sends the same text through the fallback when the primary is down (twilio behind msg91)", async () => {
    const { sms } = build(MSG91_THEN_TWILIO);
    msg91.behave({ kind: "down" });
    const m = message();
    const receipt = await sms.send(m);
    expect(receipt.provider).toBe("twilio");
    expect(twilio.messages.at(-1)?.body).toBe(m.text);
  });

  it("fails over when the primary times out", async () => {
    // The fallback gets the same timeout, so it is long enough for a loaded machine to answer in.
    const { sms } = build({ ...TWILIO_THEN_MSG91, SMS_TIMEOUT_MS: "2000" });
    twilio.behave({ kind: "hang" });
    const started = performance.now();
    const receipt = await sms.send(message());
    expect(receipt.provider).toBe("msg91");
    expect(performance.now() - started).toBeLessThan(15_000);
  });

  it("fails over when the primary refuses us for our configuration", async () => {
    const { sms } = build({ ...TWILIO_THEN_MSG91, TWILIO_AUTH_TOKEN: "f".repeat(32) });
    const receipt = await sms.send(message());
    expect(receipt.provider).toBe("msg91");
  });

  it("does not fail over when the number itself is invalid", async () => {
    const { sms } = build(TWILIO_THEN_MSG91);
    const before = counts();
    const err = await failure(sms.send(message("+15005550001")));
    expect(err.kind).toBe("invalid_number");
    expect(err.provider).toBe("twilio");
    expect(delta(before)).toEqual({ twilio: 1, msg91: 0 });
  });

  it("does not fail over when the number cannot receive SMS", async () => {
    const { sms } = build(TWILIO_THEN_MSG91);
    const before = counts();
    const err = await failure(sms.send(message("+15005550009")));
    expect(err.kind).toBe("unreachable_number");
    expect(delta(before)).toEqual({ twilio: 1, msg91: 0 });
  });

  it("throws provider_down, with each provider's reason, when no provider could send", async () => {
    const { sms } = build(TWILIO_THEN_MSG91);
    twilio.behave({ kind: "down" });
    msg91.behave({ kind: "error", message: "Authentication failure", status: 401 });
    const err = await failure(sms.send(message()));
    expect(err).toBeInstanceOf(NoProviderSentError);
    expect(err.kind).toBe("provider_down");
    expect((err as NoProviderSentError).attempts.map((a) => [a.provider, a.error?.kind])).toEqual([
      ["twilio", "provider_down"],
      ["msg91", "our_config"],
    ]);
    expect(err.detail).toMatch(/twilio: provider_down.*msg91: our_config/);
  });

  it("throws provider_down for a single provider that fails on our side", async () => {
    const { sms } = build({ SMS_PROVIDER: "twilio", TWILIO_AUTH_TOKEN: "f".repeat(32) });
    const err = await failure(sms.send(message()));
    expect(err.kind).toBe("provider_down");
    expect(err.detail).toMatch(/our_config.*20003/);
  });
});

describe("circuit breaker around each provider", () => {
  it("skips a failing primary without a request reaching it, then tries it again after the cool-down", async () => {
    let now = 1_000_000;
    const { sms } = build(
      { ...TWILIO_THEN_MSG91, SMS_BREAKER_FAILURES: "2", SMS_BREAKER_COOLDOWN_MS: "30000" },
      () => now,
    );
    twilio.behave({ kind: "down" });
    let before = counts();
    expect((await sms.send(message())).provider).toBe("msg91");
    expect((await sms.send(message())).provider).toBe("msg91");
    expect(delta(before)).toEqual({ twilio: 2, msg91: 2 });

    // Open: the primary is skipped outright.
    before = counts();
    expect((await sms.send(message())).provider).toBe("msg91");
    now += 29_999;
    expect((await sms.send(message())).provider).toBe("msg91");
    expect(delta(before)).toEqual({ twilio: 0, msg91: 2 });

    // Cool-down over and Twilio back: one trial goes to the primary and closes the breaker.
    twilio.behave({ kind: "normal" });
    now += 1;
    before = counts();
    expect((await sms.send(message())).provider).toBe("twilio");
    expect((await sms.send(message())).provider).toBe("twilio");
    expect(delta(before)).toEqual({ twilio: 2, msg91: 0 });
  });

  it("re-opens for another cool-down when the trial fails", async () => {
    let now = 0;
    const { sms } = build(
      { ...TWILIO_THEN_MSG91, SMS_BREAKER_FAILURES: "1", SMS_BREAKER_COOLDOWN_MS: "1000" },
      () => now,
    );
    twilio.behave({ kind: "down" });
    await sms.send(message());
    now += 1000;
    let before = counts();
    expect((await sms.send(message())).provider).toBe("msg91");
    expect(delta(before)).toEqual({ twilio: 1, msg91: 1 });
    before = counts();
    expect((await sms.send(message())).provider).toBe("msg91");
    expect(delta(before)).toEqual({ twilio: 0, msg91: 1 });
  });

  it("does not count a number's fault as a provider failure", async () => {
    const { sms } = build({ ...TWILIO_THEN_MSG91, SMS_BREAKER_FAILURES: "1" }, () => 0);
    await failure(sms.send(message("+15005550001")));
    const before = counts();
    expect((await sms.send(message())).provider).toBe("twilio");
    expect(delta(before)).toEqual({ twilio: 1, msg91: 0 });
  });

  it("answers provider_down at once when every provider's breaker is open", async () => {
    const { sms } = build({ SMS_PROVIDER: "twilio", SMS_BREAKER_FAILURES: "1" }, () => 0);
    twilio.behave({ kind: "down" });
    await failure(sms.send(message()));
    const before = counts();
    const err = await failure(sms.send(message()));
    expect(err.kind).toBe("provider_down");
    expect((err as NoProviderSentError).attempts).toEqual([{ provider: "twilio" }]);
    expect(delta(before)).toEqual({ twilio: 0, msg91: 0 });
  });
});

describe("CircuitBreaker", () => {
  it("lets exactly one trial through when half-open", () => {
    let now = 0;
    const b = new CircuitBreaker({ failureThreshold: 1, cooldownMs: 10, now: () => now });
    b.recordFailure();
    expect(b.state).toBe("open");
    now = 10;
    expect(b.tryAcquire()).toBe(true);
    expect(b.state).toBe("half_open");
    expect(b.tryAcquire()).toBe(false);
    b.recordSuccess();
    expect(b.state).toBe("closed");
    expect(b.tryAcquire()).toBe(true);
  });

  it("property: opens on the threshold-th consecutive failure, never before, and admits nothing while open or a second trial too early", () => {
    const step = fc.oneof(
      fc.record({ op: fc.constant("advance" as const), ms: fc.integer({ min: 0, max: 50 }) }),
      // "send" reports its outcome at once; "start" never reports, like a sender that hangs forever.
      fc.record({ op: fc.constant("send" as const), ok: fc.boolean() }),
      fc.record({ op: fc.constant("start" as const) }),
    );
    fc.assert(
      fc.property(
        fc.integer({ min: 1, max: 4 }),
        fc.integer({ min: 0, max: 100 }),
        fc.array(step, { maxLength: 60 }),
        (threshold, cooldownMs, steps) => {
          let now = 0;
          let openedAt = 0;
          let trialStartedAt: number | undefined;
          // Counted here, not read from the breaker: a breaker that never opens must fail this property, and
          // "open" alone would only ever be checked when the breaker itself said so.
          let consecutiveFailures = 0;
          const b = new CircuitBreaker({ failureThreshold: threshold, cooldownMs, now: () => now });
          for (const s of steps) {
            if (s.op === "advance") {
              now += s.ms;
              continue;
            }
            const was = b.state;
            const admitted = b.tryAcquire();
            if (was === "closed") expect(admitted).toBe(true);
            if (was === "open" && now - openedAt < cooldownMs) expect(admitted).toBe(false);
            if (!admitted) continue;
            const trial = b.state === "half_open";
            if (trial) {
              if (was === "half_open" && trialStartedAt !== undefined) {
                expect(now - trialStartedAt).toBeGreaterThanOrEqual(cooldownMs);
              }
              trialStartedAt = now;
            }
            if (s.op === "start") continue;
            trialStartedAt = undefined;
            if (s.ok) {
              b.recordSuccess();
              consecutiveFailures = 0;
              expect(b.state).toBe("closed");
              continue;
            }
            b.recordFailure();
            consecutiveFailures += 1;
            // Closed until the threshold-th failure in a row, open from it on; a failed trial re-opens at once.
            const shouldOpen = trial || consecutiveFailures >= threshold;
            expect(b.state).toBe(shouldOpen ? "open" : "closed");
            if (shouldOpen) openedAt = now;
          }
        },
      ),
    );
  });
});
