import { describe, expect, it } from "vitest";
import { ConfigError, loadConfig } from "../src/config.js";
import { EnvReader } from "../src/env-reader.js";
import { readSmsConfig, settingsOf } from "../src/sms/config.js";
import { DEFAULT_OTP_TEMPLATE } from "../src/sms/message.js";
import { msg91Provider } from "../src/sms/msg91/provider.js";
import { twilioProvider } from "../src/sms/twilio/provider.js";

const SID = `AC${"0123456789abcdef".repeat(2)}`;
const SERVICE = `MG${"fedcba9876543210".repeat(2)}`;
const TOKEN = "s3cr3t-t0k3n-0123456789abcdef01";
const MSG91_KEY = "msg91-k3y-0123456789";

function read(env: Record<string, string>, production = false, appName = "IndoStar Naturals") {
  const r = new EnvReader({ ...(production ? { NODE_ENV: "production" } : {}), APP_NAME: appName, ...env });
  const cfg = readSmsConfig(r);
  return { cfg, problems: r.problems };
}

const TWILIO = { TWILIO_ACCOUNT_SID: SID, TWILIO_AUTH_TOKEN: TOKEN, TWILIO_PHONE_NUMBER: "+15017122661" };
const MSG91 = { MSG91_AUTH_KEY: MSG91_KEY, MSG91_TEMPLATE_ID: "64f0c0ffee0123456789abcd" };

describe("readSmsConfig", () => {
  it("defaults to the development provider with the documented defaults", () => {
    const { cfg, problems } = read({});
    expect(problems).toEqual([]);
    expect(cfg).toMatchObject({
      provider: "development",
      fallback: undefined,
      timeoutMs: 5000,
      breaker: { failures: 5, cooldownMs: 30_000 },
      maxInFlight: 200,
      appName: "IndoStar Naturals",
      template: DEFAULT_OTP_TEMPLATE,
      webOtpDomain: undefined,
      warnings: [],
    });
    expect(cfg.providers.map((p) => p.provider.name)).toEqual(["development"]);
  });

  it("reads SMS_MAX_IN_FLIGHT, where 0 turns the cap off", () => {
    expect(read({ SMS_MAX_IN_FLIGHT: "0" }).cfg.maxInFlight).toBe(0);
    expect(read({ SMS_MAX_IN_FLIGHT: "16" }).cfg.maxInFlight).toBe(16);
  });

  it("reads Twilio with the default API base URL", () => {
    const { cfg, problems } = read({ SMS_PROVIDER: "twilio", ...TWILIO });
    expect(problems).toEqual([]);
    expect(settingsOf(cfg, twilioProvider)).toEqual({
      accountSid: SID,
      authToken: TOKEN,
      messagingServiceSid: undefined,
      phoneNumber: "+15017122661",
      apiBaseUrl: "https://api.twilio.com",
      statusCallbackUrl: undefined,
    });
  });

  it("names each missing Twilio variable, for the provider and for the fallback", () => {
    expect(read({ SMS_PROVIDER: "twilio" }).problems).toEqual([
      "TWILIO_ACCOUNT_SID is required when SMS_PROVIDER=twilio",
      "TWILIO_AUTH_TOKEN is required when SMS_PROVIDER=twilio",
      expect.stringMatching(
        /^TWILIO_MESSAGING_SERVICE_SID or TWILIO_PHONE_NUMBER is required when SMS_PROVIDER=twilio/,
      ),
    ]);
    expect(read({ SMS_PROVIDER: "msg91", ...MSG91, SMS_FALLBACK_PROVIDER: "twilio" }).problems).toEqual([
      "TWILIO_ACCOUNT_SID is required when SMS_FALLBACK_PROVIDER=twilio",
      "TWILIO_AUTH_TOKEN is required when SMS_FALLBACK_PROVIDER=twilio",
      expect.stringMatching(
        /^TWILIO_MESSAGING_SERVICE_SID or TWILIO_PHONE_NUMBER is required when SMS_FALLBACK_PROVIDER=twilio/,
      ),
    ]);
  });

  it("names each missing MSG91 variable", () => {
    expect(read({ SMS_PROVIDER: "msg91" }).problems).toEqual([
      "MSG91_AUTH_KEY is required when SMS_PROVIDER=msg91",
      expect.stringMatching(/^MSG91_TEMPLATE_ID is required when SMS_PROVIDER=msg91/),
    ]);
    expect(read({ SMS_PROVIDER: "twilio", ...TWILIO, SMS_FALLBACK_PROVIDER: "msg91" }).problems).toEqual([
      "MSG91_AUTH_KEY is required when SMS_FALLBACK_PROVIDER=msg91",
      expect.stringMatching(/^MSG91_TEMPLATE_ID is required when SMS_FALLBACK_PROVIDER=msg91/),
    ]);
  });

  it("prefers the Messaging Service when both senders are set, and says so", () => {
    const { cfg, problems } = read({
      SMS_PROVIDER: "twilio",
      ...TWILIO,
      TWILIO_MESSAGING_SERVICE_SID: SERVICE,
    });
    expect(problems).toEqual([]);
    expect(settingsOf(cfg, twilioProvider)?.messagingServiceSid).toBe(SERVICE);
    expect(cfg.warnings).toEqual([expect.stringMatching(/Messaging Service is used/)]);
  });

  it.each([
    [{ TWILIO_ACCOUNT_SID: "SK0123" }, /^TWILIO_ACCOUNT_SID must be "AC"/],
    [{ TWILIO_MESSAGING_SERVICE_SID: "MG12" }, /^TWILIO_MESSAGING_SERVICE_SID must be "MG"/],
    [{ TWILIO_PHONE_NUMBER: "5017122661" }, /^TWILIO_PHONE_NUMBER must be E.164/],
    [{ TWILIO_API_BASE_URL: "not a url" }, /^TWILIO_API_BASE_URL must be a URL/],
    [{ TWILIO_API_BASE_URL: "ftp://api.twilio.com" }, /^TWILIO_API_BASE_URL must be an https:\/\/ URL/],
    [
      { TWILIO_STATUS_CALLBACK_URL: "/webhooks/twilio/status" },
      /^TWILIO_STATUS_CALLBACK_URL must be the public https:\/\/ URL/,
    ],
    [{ SMS_TIMEOUT_MS: "5s" }, /^SMS_TIMEOUT_MS must be a whole number/],
    [{ SMS_TIMEOUT_MS: "10" }, /^SMS_TIMEOUT_MS must be between 100 and 60000/],
    [{ SMS_MAX_IN_FLIGHT: "-1" }, /^SMS_MAX_IN_FLIGHT must be a whole number/],
    [{ SMS_MAX_IN_FLIGHT: "1000000" }, /^SMS_MAX_IN_FLIGHT must be between 0 and 100000/],
    [{ SMS_BREAKER_FAILURES: "0" }, /^SMS_BREAKER_FAILURES must be between 1 and 1000/],
    [{ SMS_BREAKER_COOLDOWN_MS: "-1" }, /^SMS_BREAKER_COOLDOWN_MS must be a whole number/],
    [{ SMS_TEMPLATE: "Your code expires soon" }, /^SMS_TEMPLATE must contain \{code\}/],
    [{ SMS_TEMPLATE: "{code} for {user}" }, /^SMS_TEMPLATE has unknown placeholders \{user\}/],
    [{ WEBOTP_DOMAIN: "https://auth.example.com" }, /^WEBOTP_DOMAIN must be a bare host name/],
    [{ SMS_FALLBACK_PROVIDER: "sns" }, /^SMS_FALLBACK_PROVIDER must be one of development, twilio, msg91/],
    [{ SMS_FALLBACK_PROVIDER: "twilio" }, /^SMS_FALLBACK_PROVIDER must differ from SMS_PROVIDER/],
    [{ MSG91_OTP_VARIABLE: "##otp##" }, /^MSG91_OTP_VARIABLE must be a template variable name/],
  ])("names the variable of an invalid value: %j", (env, problem) => {
    const { problems } = read({
      SMS_PROVIDER: "twilio",
      ...TWILIO,
      SMS_FALLBACK_PROVIDER: "msg91",
      ...MSG91,
      ...env,
    });
    expect(problems).toEqual([expect.stringMatching(problem)]);
  });

  it("never puts a secret in a problem or warning", () => {
    const { cfg, problems } = read({
      SMS_PROVIDER: "twilio",
      ...TWILIO,
      TWILIO_ACCOUNT_SID: "bad",
      TWILIO_MESSAGING_SERVICE_SID: SERVICE,
      SMS_FALLBACK_PROVIDER: "msg91",
      MSG91_AUTH_KEY: MSG91_KEY,
    });
    const said = JSON.stringify([problems, cfg.warnings]);
    expect(said).not.toContain(TOKEN);
    expect(said).not.toContain(MSG91_KEY);
  });

  it("refuses the development provider in production, as primary or fallback", () => {
    expect(read({}, true).problems).toEqual([
      "SMS_PROVIDER is required when NODE_ENV=production: set it to twilio or msg91",
    ]);
    expect(read({ SMS_PROVIDER: "development" }, true).problems).toEqual([
      "SMS_PROVIDER=development prints codes to the console and is refused when NODE_ENV=production",
    ]);
    expect(
      read({ SMS_PROVIDER: "twilio", ...TWILIO, SMS_FALLBACK_PROVIDER: "development" }, true).problems,
    ).toEqual([
      "SMS_FALLBACK_PROVIDER=development prints codes to the console and is refused when NODE_ENV=production",
    ]);
  });

  it("refuses plain-http API URLs in production (credentials ride in the headers)", () => {
    const { problems } = read(
      { SMS_PROVIDER: "twilio", ...TWILIO, TWILIO_API_BASE_URL: "http://127.0.0.1:9" },
      true,
    );
    expect(problems).toEqual([
      expect.stringMatching(/^TWILIO_API_BASE_URL must be an https:\/\/ URL when NODE_ENV=production/),
    ]);
    expect(
      read({ SMS_PROVIDER: "twilio", ...TWILIO, TWILIO_API_BASE_URL: "http://127.0.0.1:9" }).problems,
    ).toEqual([]);
  });

  it("reports each SMS_PROVIDER problem once through loadConfig, which leaves SMS_PROVIDER to this reader", () => {
    const problems = (env: Record<string, string>) => {
      try {
        loadConfig(env);
        return [];
      } catch (err) {
        if (!(err instanceof ConfigError)) throw err;
        return err.problems.filter((p) => p.startsWith("SMS_PROVIDER"));
      }
    };
    expect(problems({ SMS_PROVIDER: "sns" })).toEqual([
      'SMS_PROVIDER must be one of development, twilio, msg91, got "sns"',
    ]);
    expect(problems({ NODE_ENV: "production" })).toEqual([
      "SMS_PROVIDER is required when NODE_ENV=production: set it to twilio or msg91",
    ]);
    expect(problems({ NODE_ENV: "production", SMS_PROVIDER: "development" })).toEqual([
      "SMS_PROVIDER=development prints codes to the console and is refused when NODE_ENV=production",
    ]);
  });

  it("reads only the sections of the providers in use, primary first", () => {
    const { cfg, problems } = read({
      SMS_PROVIDER: "msg91",
      ...MSG91,
      SMS_FALLBACK_PROVIDER: "twilio",
      ...TWILIO,
    });
    expect(problems).toEqual([]);
    expect(cfg.providers.map((p) => p.provider.name)).toEqual(["msg91", "twilio"]);
    expect(settingsOf(cfg, msg91Provider)?.templateId).toBe(MSG91.MSG91_TEMPLATE_ID);
    expect(
      settingsOf(read({ SMS_PROVIDER: "msg91", ...MSG91, ...TWILIO }).cfg, twilioProvider),
    ).toBeUndefined();
  });

  it("reads the template with literal \\n as newlines and the WebOTP domain in lower case", () => {
    const { cfg, problems } = read({
      SMS_TEMPLATE: "{app}\\nCode: {code}",
      WEBOTP_DOMAIN: "Auth.Example.com",
    });
    expect(problems).toEqual([]);
    expect(cfg.template).toBe("{app}\nCode: {code}");
    expect(cfg.webOtpDomain).toBe("auth.example.com");
  });

  it("warns when the text can exceed one segment, or is UCS-2 because of the app name", () => {
    expect(read({ SMS_TEMPLATE: `{code} ${"long ".repeat(32)}` }).cfg.warnings).toEqual([
      expect.stringMatching(/^SMS_TEMPLATE can take 2 SMS segments/),
    ]);
    expect(read({}, false, "इंडोस्टार नैचुरल्स").cfg.warnings).toEqual([
      expect.stringMatching(/^the default SMS template can take/),
      expect.stringMatching(/^APP_NAME has characters outside GSM-7/),
    ]);
    expect(read({}, false, "A".repeat(100)).cfg.warnings).toEqual([
      expect.stringMatching(/^the default SMS template can take 2 SMS segments/),
    ]);
  });

  it("tells the operator that msg91 does not use SMS_TEMPLATE", () => {
    const { cfg } = read({ SMS_PROVIDER: "msg91", ...MSG91, SMS_TEMPLATE: "{code} is your code" });
    expect(cfg.warnings).toEqual([expect.stringMatching(/SMS_TEMPLATE does not apply to msg91/)]);
  });
});
