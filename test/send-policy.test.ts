import { describe, expect, it } from "vitest";
import { loadConfig } from "../src/config.js";
import type { Logger } from "../src/log.js";
import type { AdmittedWrite } from "../src/login/ports.js";
import { inWords, LoginError } from "../src/login/reasons.js";
import { PhoneNormalizer } from "../src/phone/normalize.js";
import type { LimitSettings } from "../src/ratelimit/config.js";
import { limitFactory } from "../src/ratelimit/limit.js";
import { memorySendDecision } from "../src/ratelimit/send-decision.js";
import { SendPolicy } from "../src/ratelimit/send-policy.js";
import { uniquePhone } from "./support/capture-sms.js";

/** A send's write that writes nothing: these tests are about the limits alone. */
const nothing: AdmittedWrite<void> = { run: async () => {} };

const phoneOf = (e164: string) => new PhoneNormalizer("IN").parse(e164);

/** A logger that keeps its error lines, to count how often the operator is told. */
function recordingLog() {
  const errors: string[] = [];
  const noop = () => {};
  const log = {
    info: noop,
    warn: noop,
    debug: noop,
    error: (_obj: unknown, msg?: string) => errors.push(msg ?? ""),
    child: () => log,
  } as unknown as Logger;
  return { log, errors };
}

const limits = (env: Record<string, string>): LimitSettings =>
  loadConfig({
    RATE_LIMIT_IP_POINTS: "0",
    RATE_LIMIT_PHONE_SEND_POINTS: "0",
    RATE_LIMIT_PHONE_COOLDOWN_SECONDS: "0",
    SMS_MAX_PER_PREFIX_PER_HOUR: "0",
    SMS_MAX_PER_COUNTRY_PER_HOUR: "0",
    ...env,
  }).limits;

describe("SendPolicy", () => {
  it("logs an exhausted SMS budget once per window, not once per refused request", async () => {
    const { log, errors } = recordingLog();
    let now = Date.UTC(2030, 0, 1);
    const policy = new SendPolicy(
      limits({ SMS_MAX_PER_HOUR: "2" }),
      limitFactory(undefined),
      memorySendDecision(async () => 0),
      log,
      () => now,
    );
    const client = { ip: "192.0.2.1" };
    await policy.check(phoneOf(uniquePhone()), client, nothing);
    await policy.check(phoneOf(uniquePhone()), client, nothing);
    for (let i = 0; i < 5; i++) {
      const err = await policy.check(phoneOf(uniquePhone()), client, nothing).catch((e: unknown) => e);
      expect(err).toBeInstanceOf(LoginError);
      expect((err as LoginError).reason).toBe("SMS_BUDGET_EXHAUSTED");
    }
    expect(errors).toHaveLength(1);
    expect(errors[0]).toMatch(/SMS budget exhausted \(SMS_MAX_PER_HOUR\)/);
    // Past the window the policy's own clock allows one more report (the limiter's window is real time).
    now += 3600_000;
    await policy.check(phoneOf(uniquePhone()), client, nothing).catch(() => undefined);
    expect(errors).toHaveLength(2);
  });

  it("a cancelled send gives its SMS points back but not the client's", async () => {
    const { log } = recordingLog();
    // The IP window outlasts the hour, so when both refuse, the IP is the one reported (the longest wait).
    const settings = limits({
      SMS_MAX_PER_HOUR: "1",
      RATE_LIMIT_IP_POINTS: "2",
      RATE_LIMIT_IP_DURATION_SECONDS: "7200",
    });
    const policy = new SendPolicy(
      settings,
      limitFactory(undefined),
      memorySendDecision(async () => 0),
      log,
    );
    const client = { ip: "192.0.2.2" };
    const { permit } = await policy.check(phoneOf(uniquePhone()), client, nothing);
    await permit.cancel();
    // The budget of 1 is free again...
    await policy.check(phoneOf(uniquePhone()), client, nothing);
    // ...but the client's first request still counts: a third one exceeds its 2.
    const err = (await policy
      .check(phoneOf(uniquePhone()), client, nothing)
      .catch((e: unknown) => e)) as LoginError;
    expect(err.reason).toBe("RATE_LIMIT_IP");
    expect(err.retryAfterSeconds).toBeGreaterThan(3600);
    const other = (await policy
      .check(phoneOf(uniquePhone()), { ip: "192.0.2.3" }, nothing)
      .catch((e: unknown) => e)) as LoginError;
    expect(other.reason).toBe("SMS_BUDGET_EXHAUSTED");
  });

  it("a write that fails after the send was admitted gives the SMS points back, not the client's, and throws", async () => {
    const { log } = recordingLog();
    const policy = new SendPolicy(
      limits({ SMS_MAX_PER_HOUR: "1", RATE_LIMIT_IP_POINTS: "2", RATE_LIMIT_IP_DURATION_SECONDS: "7200" }),
      limitFactory(undefined),
      memorySendDecision(async () => 0),
      log,
    );
    const client = { ip: "192.0.2.4" };
    const lost = new Error("the put was lost");
    const failing: AdmittedWrite<never> = { run: async () => Promise.reject(lost) };
    expect(await policy.check(phoneOf(uniquePhone()), client, failing).catch((e: unknown) => e)).toBe(lost);
    // The budget of 1 is free again; the client's first request still counted (its third is over 2).
    const { written } = await policy.check(phoneOf(uniquePhone()), client, { run: async () => "stored" });
    expect(written).toBe("stored");
    const err = (await policy
      .check(phoneOf(uniquePhone()), client, nothing)
      .catch((e: unknown) => e)) as LoginError;
    expect(err.reason).toBe("RATE_LIMIT_IP");
  });

  it("says when to retry in words", () => {
    expect(inWords(1)).toBe("1 second");
    expect(inWords(27)).toBe("27 seconds");
    expect(inWords(119)).toBe("119 seconds");
    expect(inWords(120)).toBe("2 minutes");
    expect(inWords(601)).toBe("11 minutes");
    expect(inWords(3600)).toBe("60 minutes");
    expect(inWords(7200)).toBe("2 hours");
  });
});
