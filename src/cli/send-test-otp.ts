/**
 * Sends one real OTP through the configured SMS provider(s), to check credentials, sender and template before
 * users do:
 *
 *   npm run send-test-otp -- +919876543210
 *
 * Reads the same variables as the service, with the service's readers (SMS_*, each provider's, APP_NAME,
 * OTP_LENGTH, OTP_TTL_SECONDS, OTP_MAX_ATTEMPTS, DEFAULT_COUNTRY). Prints the provider's message id, or why the message did not go and the likely fix.
 * Neither secrets nor the code are printed, except by the development provider, whose job that is.
 */
import { type CountryCode, parsePhoneNumberWithError } from "libphonenumber-js/max";
import { EnvReader } from "../env-reader.js";
import { generateCode } from "../login/code.js";
import { SmsError } from "../login/failures.js";
import { readCodeSettings } from "../otp/config.js";
import { readDefaultCountry } from "../phone/config.js";
import { otpText, readSmsConfig } from "../sms/config.js";
import { createSmsSender } from "../sms/factory.js";
import { NoProviderSentError } from "../sms/failover.js";

const out = (line: string) => process.stdout.write(`${line}\n`);
const err = (line: string) => process.stderr.write(`${line}\n`);

async function main(argv: readonly string[]): Promise<number> {
  const input = argv[0];
  if (input === undefined || input === "--help" || input === "-h" || argv.length > 1) {
    err("usage: send-test-otp <phone>   e.g. send-test-otp +919876543210");
    return 1;
  }

  // The service's own readers, so the CLI accepts and refuses exactly what the service would.
  const r = new EnvReader(process.env);
  const codes = readCodeSettings(r);
  const defaultCountry = readDefaultCountry(r);
  const cfg = readSmsConfig(r);
  if (r.problems.length > 0) {
    err("send-test-otp: the configuration has problems:");
    for (const p of r.problems) err(`  - ${p}`);
    return 1;
  }

  const to = toE164(input, defaultCountry);
  if (typeof to !== "string") {
    err(`send-test-otp: ${to.problem}`);
    return 1;
  }

  const sender = createSmsSender(cfg, {
    info: () => {},
    // Configuration warnings come without fields; per-attempt ones carry fields and are printed by report().
    warn: (msg, extra) => {
      if (extra === undefined) err(`warning: ${msg}`);
    },
    error: (msg) => err(`error: ${msg}`),
  });
  const code = generateCode(codes.length);
  const text = otpText(cfg, codes.ttlSeconds)(code);

  out(`sending a test OTP to ${to} via ${cfg.provider}${cfg.fallback ? ` (fallback ${cfg.fallback})` : ""}`);
  try {
    const receipt = await sender.send({ to, text, code });
    out(`sent by ${receipt.provider}, message id ${receipt.id}`);
    return 0;
  } catch (e) {
    report(e);
    return 1;
  }
}

function toE164(input: string, defaultCountry: string): string | { problem: string } {
  const raw = input.trim();
  // Taken as typed: provider test numbers (Twilio's +15005550006) are not all valid to libphonenumber.
  if (/^\+[1-9]\d{6,14}$/.test(raw)) return raw;
  try {
    const parsed = parsePhoneNumberWithError(raw, defaultCountry as CountryCode);
    if (parsed.isValid()) return parsed.number;
    return {
      problem: `"${raw}" is not a valid ${parsed.country ?? defaultCountry} number; use E.164 such as +919876543210`,
    };
  } catch (e) {
    const reason = e instanceof Error ? e.message : String(e);
    return { problem: `"${raw}" is not a phone number (${reason}); use E.164 such as +919876543210` };
  }
}

function report(e: unknown): void {
  if (!(e instanceof SmsError)) {
    err(`send-test-otp: failed unexpectedly: ${e instanceof Error ? e.message : String(e)}`);
    return;
  }
  err(`send-test-otp: NOT SENT (${e.kind}): ${e.message}`);
  const failures = e instanceof NoProviderSentError ? e.attempts : [{ provider: e.provider, error: e }];
  for (const a of failures) {
    err(
      `  ${a.provider}: ${a.error ? `${a.error.kind}: ${a.error.detail ?? a.error.message}` : "skipped (circuit open)"}`,
    );
  }
  err(`likely fix: ${likelyFix(failures.map((a) => a.error).filter((x) => x !== undefined))}`);
}

function likelyFix(errors: readonly SmsError[]): string {
  // A configuration fault is the one an operator can fix now, so it wins over an outage.
  const first = errors.find((e) => e.kind === "our_config") ?? errors[0];
  if (!first) return "wait for the providers' circuit breakers to close (SMS_BREAKER_COOLDOWN_MS) and retry";
  switch (first.kind) {
    case "invalid_number":
      return "the number itself was refused: check it, in E.164 such as +919876543210";
    case "unreachable_number":
      return "the number cannot receive this SMS (landline, unsubscribed, or its country is not enabled); see above";
    case "our_config":
      return "fix the account or variable named above, then run this again";
    case "provider_down":
      return "check this machine can reach the provider (TWILIO_API_BASE_URL / MSG91_API_BASE_URL, proxy, firewall) and its status page, then retry";
  }
}

process.exitCode = await main(process.argv.slice(2));
