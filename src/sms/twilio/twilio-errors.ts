import { SmsError, type SmsErrorKind } from "../../login/failures.js";

const PROVIDER = "twilio";
const TRY_LATER = "We could not send the SMS right now. Please try again in a few minutes.";

interface Known {
  readonly kind: SmsErrorKind;
  /** For the user, only for the number's own faults; otherwise the generic TRY_LATER. */
  readonly user?: string;
  /** For the operator: what to fix. */
  readonly hint: string;
}

// Error codes from https://www.twilio.com/docs/api/errors, limited to those Messages.create can return
// synchronously. Delivery failures (30xxx) arrive later, through the status callback.
const KNOWN: Readonly<Record<number, Known>> = {
  21211: {
    kind: "invalid_number",
    user: "This phone number is not valid. Check it and try again.",
    hint: "invalid 'To' number",
  },
  21217: {
    kind: "invalid_number",
    user: "This phone number is not valid. Check it and try again.",
    hint: "the 'To' number does not appear to be valid",
  },
  21614: {
    kind: "unreachable_number",
    user: "This number cannot receive text messages. Please use a mobile number.",
    hint: "the 'To' number is not a mobile number (landline or VoIP)",
  },
  21612: {
    kind: "unreachable_number",
    user: "This number cannot receive text messages right now. Please use another number.",
    hint: "the 'To' number is not reachable via SMS from this sender",
  },
  21610: {
    kind: "unreachable_number",
    user: "This number has blocked text messages from us (it replied STOP). Reply START to our last message, or use another number.",
    hint: "the recipient unsubscribed (replied STOP)",
  },
  21408: {
    kind: "unreachable_number",
    user: "We cannot send text messages to this country yet.",
    hint: "SMS to this region is not enabled: Console > Messaging > Settings > Geo permissions",
  },
  20003: {
    kind: "our_config",
    hint: "authentication failed: check TWILIO_ACCOUNT_SID and TWILIO_AUTH_TOKEN (live credentials of the same account)",
  },
  20008: {
    kind: "our_config",
    hint: "test credentials cannot send real messages: use the live TWILIO_ACCOUNT_SID and TWILIO_AUTH_TOKEN",
  },
  20404: {
    kind: "our_config",
    hint: "resource not found: check TWILIO_ACCOUNT_SID (and TWILIO_API_BASE_URL if set)",
  },
  21608: {
    kind: "our_config",
    hint:
      "trial account: it can only send to verified numbers. Verify this number at " +
      "https://console.twilio.com/us1/develop/phone-numbers/manage/verified or upgrade the account",
  },
  21219: {
    kind: "our_config",
    hint:
      "trial account: the 'To' number is not verified. Verify it at " +
      "https://console.twilio.com/us1/develop/phone-numbers/manage/verified or upgrade the account",
  },
  21212: { kind: "our_config", hint: "invalid 'From': check TWILIO_PHONE_NUMBER (E.164, e.g. +15017122661)" },
  21606: {
    kind: "our_config",
    hint: "TWILIO_PHONE_NUMBER cannot send SMS: it is not SMS-capable or not in this account",
  },
  21659: { kind: "our_config", hint: "TWILIO_PHONE_NUMBER is not a Twilio number of this account" },
  21701: {
    kind: "our_config",
    hint: "the Messaging Service does not exist: check TWILIO_MESSAGING_SERVICE_SID",
  },
  21703: {
    kind: "our_config",
    hint: "the Messaging Service has no sender available: add a number or sender ID to TWILIO_MESSAGING_SERVICE_SID",
  },
  21704: {
    kind: "our_config",
    hint: "the Messaging Service has no senders: add a number or sender ID to TWILIO_MESSAGING_SERVICE_SID",
  },
  20429: { kind: "provider_down", hint: "throttled by Twilio (429) after retries" },
  14107: { kind: "provider_down", hint: "SMS send rate limit exceeded" },
  21611: { kind: "provider_down", hint: "the sender's message queue is full" },
  20500: { kind: "provider_down", hint: "Twilio internal error" },
  20503: { kind: "provider_down", hint: "Twilio service unavailable" },
};

// Node and axios error codes that mean the request never got an answer.
const NETWORK_CODES = new Set([
  "ECONNREFUSED",
  "ECONNRESET",
  "ETIMEDOUT",
  "ECONNABORTED",
  "ERR_CANCELED",
  "ENOTFOUND",
  "EAI_AGAIN",
  "EHOSTUNREACH",
  "ENETUNREACH",
  "EPIPE",
  "ERR_NETWORK",
  "ERR_BAD_RESPONSE",
]);

function field(err: unknown, name: string): unknown {
  return typeof err === "object" && err !== null ? (err as Record<string, unknown>)[name] : undefined;
}

/**
 * Turns whatever the SDK threw into an SmsError. The SDK throws RestException, TwilioServiceException (RFC
 * 9457 bodies) and axios errors, so the decision rests on the numeric `code` and `status` they carry, never
 * on the class.
 */
export function classifyTwilioError(err: unknown, timedOut = false): SmsError {
  const code = field(err, "code");
  const status = field(err, "status");
  const moreInfo = field(err, "moreInfo");
  const numericStatus = typeof status === "number" ? status : undefined;
  if (timedOut) {
    return new SmsError("provider_down", TRY_LATER, PROVIDER, "no answer from Twilio within SMS_TIMEOUT_MS");
  }
  if (typeof code === "number" && code > 0) {
    const known = KNOWN[code];
    const kind = known?.kind ?? kindOfStatus(numericStatus);
    const hint =
      known?.hint ?? (typeof field(err, "message") === "string" ? String(field(err, "message")) : "");
    const where = typeof moreInfo === "string" && moreInfo !== "" ? ` (${moreInfo})` : "";
    const detail = `Twilio error ${code}, HTTP ${numericStatus ?? "?"}: ${stripNumbers(hint)}${where}`;
    return new SmsError(kind, known?.user ?? TRY_LATER, PROVIDER, detail);
  }
  if (numericStatus !== undefined) {
    return new SmsError(
      kindOfStatus(numericStatus),
      TRY_LATER,
      PROVIDER,
      `Twilio answered HTTP ${numericStatus}`,
    );
  }
  if (typeof code === "string" && NETWORK_CODES.has(code)) {
    return new SmsError("provider_down", TRY_LATER, PROVIDER, `could not reach Twilio: ${code}`);
  }
  const message = err instanceof Error ? `${err.name}: ${err.message}` : String(err);
  // The SDK throws plain Errors for bad arguments (e.g. "accountSid must start with AC").
  return new SmsError("our_config", TRY_LATER, PROVIDER, `Twilio client error: ${stripNumbers(message)}`);
}

function kindOfStatus(status: number | undefined): SmsErrorKind {
  if (status === undefined || status === 429 || status >= 500) return "provider_down";
  return "our_config";
}

// Twilio's own messages repeat the phone number; details go to logs, where full numbers do not belong.
function stripNumbers(text: string): string {
  return text.replace(/\+?\d{7,15}/g, (n) => `${n.slice(0, 3)}***${n.slice(-2)}`);
}
