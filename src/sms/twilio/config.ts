import type { EnvReader } from "../../env-reader.js";
import { readBaseUrl } from "../base-url.js";
import type { SmsProviderContext } from "../provider.js";
import { TWILIO_DEFAULT_API_BASE_URL } from "./twilio-http-client.js";

export interface TwilioConfig {
  readonly accountSid: string;
  readonly authToken: string;
  /** Used when set, even when a phone number is set too. */
  readonly messagingServiceSid: string | undefined;
  readonly phoneNumber: string | undefined;
  readonly apiBaseUrl: string;
  readonly statusCallbackUrl: string | undefined;
}

const E164 = /^\+[1-9]\d{6,14}$/;

/** TWILIO_*, read when twilio is the provider or the fallback. */
export function readTwilioConfig(r: EnvReader, ctx: SmsProviderContext): TwilioConfig {
  const needed = (name: string, secret = false) => {
    const value = secret ? r.secret(name) : r.optional(name);
    if (value === undefined) r.problems.push(`${name} is required when ${ctx.usedBy}`);
    return value ?? "";
  };
  const accountSid = needed("TWILIO_ACCOUNT_SID");
  if (accountSid !== "" && !/^AC[0-9a-fA-F]{32}$/.test(accountSid)) {
    r.problems.push(`TWILIO_ACCOUNT_SID must be "AC" and 32 hex digits (Twilio Console > Account info)`);
  }
  const authToken = needed("TWILIO_AUTH_TOKEN", true);
  const messagingServiceSid = r.optional("TWILIO_MESSAGING_SERVICE_SID");
  const phoneNumber = r.optional("TWILIO_PHONE_NUMBER");
  if (messagingServiceSid === undefined && phoneNumber === undefined) {
    r.problems.push(
      `TWILIO_MESSAGING_SERVICE_SID or TWILIO_PHONE_NUMBER is required when ${ctx.usedBy} ` +
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
    ctx.warn(
      "both TWILIO_MESSAGING_SERVICE_SID and TWILIO_PHONE_NUMBER are set: the Messaging Service is used",
    );
  }
  return {
    accountSid,
    authToken,
    messagingServiceSid,
    phoneNumber,
    apiBaseUrl: readBaseUrl(r, "TWILIO_API_BASE_URL", TWILIO_DEFAULT_API_BASE_URL),
    statusCallbackUrl: readStatusCallbackUrl(r),
  };
}

function readStatusCallbackUrl(r: EnvReader): string | undefined {
  const name = "TWILIO_STATUS_CALLBACK_URL";
  const raw = r.optional(name);
  if (raw === undefined) return undefined;
  try {
    const url = new URL(raw);
    if (url.protocol === "https:" || (url.protocol === "http:" && !r.production)) return raw;
  } catch {
    // reported below
  }
  r.problems.push(
    `${name} must be the public https:// URL of /webhooks/twilio/status, such as https://auth.example.com/webhooks/twilio/status, got "${raw}"`,
  );
  return undefined;
}
