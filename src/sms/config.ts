import { type EnvReader, IN_PRODUCTION } from "../env-reader.js";
import { checkOtpTemplate, DEFAULT_OTP_TEMPLATE, renderOtpMessage } from "./message.js";
import type { SmsProvider } from "./provider.js";
import { SMS_PROVIDERS } from "./registry.js";
import { isGsm7 } from "./segments.js";

/** A provider in use and the settings its own reader returned; only that provider reads them. */
export interface ConfiguredSmsProvider {
  readonly provider: SmsProvider<unknown>;
  readonly settings: unknown;
}

export interface SmsConfig {
  /** The names SMS_PROVIDER and SMS_FALLBACK_PROVIDER resolved to. */
  readonly provider: string;
  readonly fallback: string | undefined;
  /** The provider, then the fallback if any, each with its own settings. */
  readonly providers: readonly ConfiguredSmsProvider[];
  /** How long one provider gets for one message (retries included) before it counts as down. */
  readonly timeoutMs: number;
  readonly breaker: { readonly failures: number; readonly cooldownMs: number };
  /** Sends in flight at once per process before more are refused (SMS_MAX_IN_FLIGHT); 0 means no cap. */
  readonly maxInFlight: number;
  /** APP_NAME, named in the text. */
  readonly appName: string;
  /** Render with `renderOtpMessage(template, { code, minutes, app: appName, webOtpDomain })`. */
  readonly template: string;
  readonly webOtpDomain: string | undefined;
  /** Usable but worth an operator's look; logged by createSmsSender. */
  readonly warnings: readonly string[];
  /** SMS_REROUTE_UNDELIVERED: a code a receipt says never arrived is sent again once, through the fallback. */
  readonly rerouteUndelivered: boolean;
}

const HOSTNAME =
  /^(?=.{1,253}$)([a-z0-9]([a-z0-9-]{0,61}[a-z0-9])?)(\.[a-z0-9]([a-z0-9-]{0,61}[a-z0-9])?)*$/i;

/**
 * Reads and checks every SMS variable: the shared ones here, each provider's own through its `readConfig`, for
 * the providers in use only. One problem per missing or invalid variable, named, goes into the reader.
 */
export function readSmsConfig(r: EnvReader): SmsConfig {
  const warnings: string[] = [];
  const names = SMS_PROVIDERS.map((p) => p.name);
  const byName = (name: string | undefined) => SMS_PROVIDERS.find((p) => p.name === name);
  const [defaultProvider] = names;
  if (defaultProvider === undefined) throw new Error("src/sms/registry.ts lists no SMS provider");

  const provider = r.oneOf("SMS_PROVIDER", names, defaultProvider);
  const refusal = (variable: string, name: string) => {
    const why = byName(name)?.refusedInProduction;
    if (r.production && why !== undefined) {
      r.problems.push(`${variable}=${name} ${why} and is refused ${IN_PRODUCTION}`);
      return true;
    }
    return false;
  };
  if (r.production && r.optional("SMS_PROVIDER") === undefined) {
    const usable = SMS_PROVIDERS.filter((p) => p.refusedInProduction === undefined).map((p) => p.name);
    r.problems.push(`SMS_PROVIDER is required ${IN_PRODUCTION}: set it to ${usable.join(" or ")}`);
  } else if (r.optional("SMS_PROVIDER") === provider) {
    refusal("SMS_PROVIDER", provider);
  }

  const fallbackRaw = r.optional("SMS_FALLBACK_PROVIDER");
  // An invalid value is reported by oneOf and comes back as `provider`, which the check below then drops.
  let fallback = fallbackRaw === undefined ? undefined : r.oneOf("SMS_FALLBACK_PROVIDER", names, provider);
  if (fallback === provider) {
    if (fallbackRaw === provider) {
      r.problems.push(`SMS_FALLBACK_PROVIDER must differ from SMS_PROVIDER (both are ${provider})`);
    }
    fallback = undefined;
  } else if (fallback !== undefined && refusal("SMS_FALLBACK_PROVIDER", fallback)) {
    fallback = undefined;
  }

  const timeoutMs = r.int("SMS_TIMEOUT_MS", 5000, 100, 60_000);
  const breaker = {
    failures: r.int("SMS_BREAKER_FAILURES", 5, 1, 1000),
    cooldownMs: r.int("SMS_BREAKER_COOLDOWN_MS", 30_000, 0, 3_600_000),
  };
  const maxInFlight = r.int("SMS_MAX_IN_FLIGHT", 200, 0, 100_000);

  // Every user reads it in every SMS: a production deploy names its own app rather than inherit the seed's.
  if (r.production) r.require("APP_NAME", `${IN_PRODUCTION} (it is named in every SMS)`);
  const appName = r.string("APP_NAME", "IndoStar Naturals");
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

  // In registry order, so problems come out in the same order whichever is the primary.
  const sections = new Map<string, ConfiguredSmsProvider>();
  for (const p of SMS_PROVIDERS) {
    const usedBy = [
      provider === p.name ? `SMS_PROVIDER=${p.name}` : undefined,
      fallback === p.name ? `SMS_FALLBACK_PROVIDER=${p.name}` : undefined,
    ]
      .filter((s) => s !== undefined)
      .join(" and ");
    if (usedBy === "") continue;
    const settings = p.readConfig(r, { usedBy, warn: (w) => warnings.push(w) });
    sections.set(p.name, { provider: p, settings });
  }
  const providers = [provider, fallback].flatMap((name) => {
    const section = name === undefined ? undefined : sections.get(name);
    return section ? [section] : [];
  });

  const rerouteUndelivered = r.bool("SMS_REROUTE_UNDELIVERED", false);
  if (rerouteUndelivered && fallback === undefined) {
    r.problems.push("SMS_REROUTE_UNDELIVERED=true needs SMS_FALLBACK_PROVIDER: the reroute goes through it");
  }
  return {
    provider,
    fallback,
    providers,
    timeoutMs,
    breaker,
    maxInFlight,
    appName,
    template,
    webOtpDomain,
    warnings,
    rerouteUndelivered,
  };
}

/** The settings `provider` read, when it is in use. */
export function settingsOf<S>(cfg: SmsConfig, provider: SmsProvider<S>): S | undefined {
  // Sound: readSmsConfig pairs each settings value with the provider whose readConfig returned it.
  return cfg.providers.find((p) => p.provider === provider)?.settings as S | undefined;
}

/** The text of each code's SMS, as configured: what the service sends and what send-test-otp sends. */
export function otpText(cfg: SmsConfig, codeTtlSeconds: number): (code: string) => string {
  const minutes = Math.ceil(codeTtlSeconds / 60);
  return (code) =>
    renderOtpMessage(cfg.template, { code, minutes, app: cfg.appName, webOtpDomain: cfg.webOtpDomain });
}
