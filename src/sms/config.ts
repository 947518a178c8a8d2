import type { EnvReader } from "../config.js";
import { checkOtpTemplate, DEFAULT_OTP_TEMPLATE } from "./message.js";
import { MSG91_DEFAULT_API_BASE_URL } from "./msg91/msg91.js";
import { isGsm7 } from "./segments.js";
import { TWILIO_DEFAULT_API_BASE_URL } from "./twilio/twilio-http-client.js";

/** The providers SMS_PROVIDER and SMS_FALLBACK_PROVIDER name. */
export const SMS_PROVIDERS = ["development", "twilio", "msg91"] as const;
export type SmsProviderName = (typeof SMS_PROVIDERS)[number];

export interface TwilioConfig {
  readonly accountSid: string;
  readonly authToken: string;
  /** Used when set, even when a phone number is set too. */
  readonly messagingServiceSid: string | undefined;
  readonly phoneNumber: string | undefined;
  readonly apiBaseUrl: string;
  readonly statusCallbackUrl: string | undefined;
}

export interface Msg91Config {
  readonly authKey: string;
  readonly templateId: string;
  readonly codeVariable: string;
  readonly apiBaseUrl: string;
}

export interface SmsConfig {
  readonly production: boolean;
  readonly provider: SmsProviderName;
  readonly fallback: SmsProviderName | undefined;
  /** How long one provider gets for one message (retries included) before it counts as down. */
  readonly timeoutMs: number;
  readonly breaker: { readonly failures: number; readonly cooldownMs: number };
  readonly appName: string;
  /** Render with `renderOtpMessage(template, { code, minutes, app: appName, webOtpDomain })`. */
  readonly template: string;
  readonly webOtpDomain: string | undefined;
  /** Present when twilio is the provider or the fallback. */
  readonly twilio: TwilioConfig | undefined;
  /** Present when msg91 is the provider or the fallback. */
  readonly msg91: Msg91Config | undefined;
  /** Usable but worth an operator's look; logged by createSmsSender. */
  readonly warnings: readonly string[];
}

const E164 = /^\+[1-9]\d{6,14}$/;
const HOSTNAME =
  /^(?=.{1,253}$)([a-z0-9]([a-z0-9-]{0,61}[a-z0-9])?)(\.[a-z0-9]([a-z0-9-]{0,61}[a-z0-9])?)*$/i;

/**
 * Reads and checks every SMS variable, pushing one problem per missing or invalid variable, named, into the
 * reader. Safe to call on a reader that has already checked SMS_PROVIDER: the same problem is kept once.
 */
export function readSmsConfig(r: EnvReader, production: boolean, appName: string): SmsConfig {
  const warnings: string[] = [];
  const inProduction = "when NODE_ENV=production";

  const provider = r.oneOf("SMS_PROVIDER", SMS_PROVIDERS, "development");
  if (production) {
    // Worded as in loadConfig, so a reader used by both reports each once.
    if (r.optional("SMS_PROVIDER") === undefined) {
      r.problems.push(`SMS_PROVIDER is required ${inProduction}: set it to twilio or msg91`);
    } else if (r.optional("SMS_PROVIDER") === "development") {
      r.problems.push(`SMS_PROVIDER=development prints codes to the console and is refused ${inProduction}`);
    }
  }

  const fallbackRaw = r.optional("SMS_FALLBACK_PROVIDER");
  // An invalid value is reported by oneOf and comes back as `provider`, which the check below then drops.
  let fallback =
    fallbackRaw === undefined ? undefined : r.oneOf("SMS_FALLBACK_PROVIDER", SMS_PROVIDERS, provider);
  if (fallback === provider) {
    if (fallbackRaw === provider) {
      r.problems.push(`SMS_FALLBACK_PROVIDER must differ from SMS_PROVIDER (both are ${provider})`);
    }
    fallback = undefined;
  } else if (fallback === "development" && production) {
    r.problems.push(
      `SMS_FALLBACK_PROVIDER=development prints codes to the console and is refused ${inProduction}`,
    );
    fallback = undefined;
  }

  const users = (name: SmsProviderName) =>
    [
      provider === name ? `SMS_PROVIDER=${name}` : undefined,
      fallback === name ? `SMS_FALLBACK_PROVIDER=${name}` : undefined,
    ]
      .filter((s) => s !== undefined)
      .join(" and ");

  const timeoutMs = r.int("SMS_TIMEOUT_MS", 5000, 100, 60_000);
  const breaker = {
    failures: r.int("SMS_BREAKER_FAILURES", 5, 1, 1000),
    cooldownMs: r.int("SMS_BREAKER_COOLDOWN_MS", 30_000, 0, 3_600_000),
  };

  const webOtpDomain = r.optional("WEBOTP_DOMAIN")?.toLowerCase();
  if (webOtpDomain !== undefined && !HOSTNAME.test(webOtpDomain)) {
    r.problems.push(
      `WEBOTP_DOMAIN must be a bare host name such as auth.example.com (no scheme, port or path), got "${webOtpDomain}"`,
    );
  }

  // Environments often carry newlines as a literal "\n".
  const configured = r.optional("SMS_TEMPLATE")?.replace(/\\n/g, "\n");
  const template = configured ?? DEFAULT_OTP_TEMPLATE;
  const check = checkOtpTemplate(template, {
    app: appName,
    webOtpDomain: webOtpDomain !== undefined && HOSTNAME.test(webOtpDomain) ? webOtpDomain : undefined,
    variable: configured === undefined ? "the default SMS template" : "SMS_TEMPLATE",
  });
  r.problems.push(...check.problems);
  warnings.push(...check.warnings);
  if (!isGsm7(appName)) {
    warnings.push(
      `APP_NAME has characters outside GSM-7, so every OTP SMS is UCS-2 (70 characters per segment)`,
    );
  }

  let twilio: TwilioConfig | undefined;
  const twilioUsers = users("twilio");
  if (twilioUsers !== "") {
    const needed = (name: string) => {
      const value = r.optional(name);
      if (value === undefined) r.problems.push(`${name} is required when ${twilioUsers}`);
      return value ?? "";
    };
    const accountSid = needed("TWILIO_ACCOUNT_SID");
    if (accountSid !== "" && !/^AC[0-9a-fA-F]{32}$/.test(accountSid)) {
      r.problems.push(`TWILIO_ACCOUNT_SID must be "AC" and 32 hex digits (Twilio Console > Account info)`);
    }
    const authToken = needed("TWILIO_AUTH_TOKEN");
    const messagingServiceSid = r.optional("TWILIO_MESSAGING_SERVICE_SID");
    const phoneNumber = r.optional("TWILIO_PHONE_NUMBER");
    if (messagingServiceSid === undefined && phoneNumber === undefined) {
      r.problems.push(
        `TWILIO_MESSAGING_SERVICE_SID or TWILIO_PHONE_NUMBER is required when ${twilioUsers} ` +
          "(a Messaging Service is preferred, especially for India)",
      );
    }
    if (messagingServiceSid !== undefined && !/^MG[0-9a-fA-F]{32}$/.test(messagingServiceSid)) {
      r.problems.push(`TWILIO_MESSAGING_SERVICE_SID must be "MG" and 32 hex digits`);
    }
    if (phoneNumber !== undefined && !E164.test(phoneNumber)) {
      r.problems.push(`TWILIO_PHONE_NUMBER must be E.164 such as +15017122661, got "${phoneNumber}"`);
    }
    if (messagingServiceSid !== undefined && phoneNumber !== undefined) {
      warnings.push(
        "both TWILIO_MESSAGING_SERVICE_SID and TWILIO_PHONE_NUMBER are set: the Messaging Service is used",
      );
    }
    twilio = {
      accountSid,
      authToken,
      messagingServiceSid,
      phoneNumber,
      apiBaseUrl: baseUrl(r, "TWILIO_API_BASE_URL", TWILIO_DEFAULT_API_BASE_URL, production),
      statusCallbackUrl: callbackUrl(r, production),
    };
  }

  let msg91: Msg91Config | undefined;
  const msg91Users = users("msg91");
  if (msg91Users !== "") {
    const needed = (name: string, why = "") => {
      const value = r.optional(name);
      if (value === undefined) r.problems.push(`${name} is required when ${msg91Users}${why}`);
      return value ?? "";
    };
    const codeVariable = r.string("MSG91_OTP_VARIABLE", "otp");
    if (!/^[A-Za-z0-9_]{1,50}$/.test(codeVariable)) {
      r.problems.push(
        `MSG91_OTP_VARIABLE must be a template variable name such as otp or var1, got "${codeVariable}"`,
      );
    }
    msg91 = {
      authKey: needed("MSG91_AUTH_KEY"),
      templateId: needed("MSG91_TEMPLATE_ID", " (the id of a DLT-approved template in the MSG91 panel)"),
      codeVariable,
      apiBaseUrl: baseUrl(r, "MSG91_API_BASE_URL", MSG91_DEFAULT_API_BASE_URL, production),
    };
    if (configured !== undefined) {
      warnings.push(
        "SMS_TEMPLATE does not apply to msg91: its text is the DLT template MSG91_TEMPLATE_ID, which must match SMS_TEMPLATE in meaning",
      );
    }
  }

  dedupe(r.problems);
  return {
    production,
    provider,
    fallback,
    timeoutMs,
    breaker,
    appName,
    template,
    webOtpDomain,
    twilio,
    msg91,
    warnings,
  };
}

function baseUrl(r: EnvReader, name: string, fallback: string, production: boolean): string {
  const raw = r.optional(name);
  if (raw === undefined) return fallback;
  let url: URL;
  try {
    url = new URL(raw);
  } catch {
    r.problems.push(`${name} must be a URL such as ${fallback}, got "${raw}"`);
    return fallback;
  }
  if (url.protocol !== "https:" && !(url.protocol === "http:" && !production)) {
    // Credentials travel in every request's headers.
    r.problems.push(
      `${name} must be an https:// URL${production ? " when NODE_ENV=production" : ""}, got "${raw}"`,
    );
    return fallback;
  }
  if (url.search !== "" || url.hash !== "") {
    r.problems.push(`${name} must not have a query string or fragment, got "${raw}"`);
    return fallback;
  }
  return raw.replace(/\/+$/, "");
}

function callbackUrl(r: EnvReader, production: boolean): string | undefined {
  const name = "TWILIO_STATUS_CALLBACK_URL";
  const raw = r.optional(name);
  if (raw === undefined) return undefined;
  try {
    const url = new URL(raw);
    if (url.protocol === "https:" || (url.protocol === "http:" && !production)) return raw;
  } catch {
    // reported below
  }
  r.problems.push(
    `${name} must be the public https:// URL of /webhooks/twilio/status, such as https://auth.example.com/webhooks/twilio/status, got "${raw}"`,
  );
  return undefined;
}

/** Keeps the first of each identical problem, in place. */
function dedupe(problems: string[]): void {
  const seen = new Set<string>();
  let kept = 0;
  for (const p of problems) {
    if (seen.has(p)) continue;
    seen.add(p);
    problems[kept++] = p;
  }
  problems.length = kept;
}
