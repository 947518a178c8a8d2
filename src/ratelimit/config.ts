import type { EnvReader } from "../env-reader.js";

/** A cap of `points` per `durationSeconds`; `points` 0 turns it off. */
export interface Window {
  readonly points: number;
  readonly durationSeconds: number;
}

/** Every abuse limit; README "Abuse protection" documents each with its variable and default. */
export interface LimitSettings {
  /** Per client IP, counted separately for sends and for verifies. */
  readonly ipSend: Window;
  readonly ipVerify: Window;
  /** Codes sent per phone. */
  readonly phoneSend: Window;
  /** Minimum gap between two codes to one phone; 0 turns it off. */
  readonly phoneCooldownSeconds: number;
  /** Consecutive wrong codes (across resends) that lock a phone, and for how long. */
  readonly phoneFailures: number;
  readonly phoneLockSeconds: number;
  /** SMS-pumping caps, per hour: per number prefix, per country calling code, and for the whole service. */
  readonly smsPerPrefixPerHour: number;
  readonly smsPerCountryPerHour: number;
  readonly smsPerHour: number;
  /** ISO 3166 regions codes may be sent to; empty: all. */
  readonly smsAllowedCountries: readonly string[];
  /** libphonenumber number types codes are never sent to (never a person's mobile). */
  readonly smsBlockedNumberTypes: readonly string[];
  /** Number ranges codes are never sent to, as digits after "+" (satellite: "8816", "870"). */
  readonly smsBlockedPrefixes: readonly string[];
  /**
   * Keys the per-country and global SMS counters are split into on a Redis Cluster (SMS_BUDGET_SHARDS);
   * undefined: 8 on a cluster. One Redis always keeps one counter each.
   */
  readonly smsBudgetShards: number | undefined;
}

const HOUR = 3600;
const MAX_POINTS = 1_000_000_000;
const MAX_SECONDS = 7 * 86_400;

/** RATE_LIMIT_* and the SMS-pumping caps (SMS_MAX_*, SMS_ALLOWED_COUNTRIES). */
export function readLimits(r: EnvReader): LimitSettings {
  const ip: Window = {
    points: r.int("RATE_LIMIT_IP_POINTS", 5, 0, MAX_POINTS),
    durationSeconds: r.int("RATE_LIMIT_IP_DURATION_SECONDS", 15 * 60, 1, MAX_SECONDS),
  };
  const countries = r.list("SMS_ALLOWED_COUNTRIES").map((c) => c.toUpperCase());
  for (const c of countries) {
    if (!/^[A-Z]{2}$/.test(c)) {
      r.problems.push(
        `SMS_ALLOWED_COUNTRIES must list two-letter ISO 3166 region codes such as IN,US; got "${c}"`,
      );
    }
  }
  // Comma-separated, with a default; "none" empties the list (an empty value means "not given").
  const blockList = (name: string, fallback: string, parse: (item: string) => string | undefined) => {
    const raw = r.optional(name) ?? fallback;
    if (raw.toLowerCase() === "none") return [];
    return raw
      .split(",")
      .map((i) => i.trim())
      .filter((i) => i !== "")
      .flatMap((item) => {
        const parsed = parse(item);
        if (parsed === undefined) r.problems.push(`${name} has an entry it cannot read: "${item}"`);
        return parsed === undefined ? [] : [parsed];
      });
  };
  return {
    ipSend: ip,
    ipVerify: ip,
    phoneSend: {
      points: r.int("RATE_LIMIT_PHONE_SEND_POINTS", 5, 0, MAX_POINTS),
      durationSeconds: r.int("RATE_LIMIT_PHONE_SEND_DURATION_SECONDS", 10 * 60, 1, MAX_SECONDS),
    },
    phoneCooldownSeconds: r.int("RATE_LIMIT_PHONE_COOLDOWN_SECONDS", 30, 0, MAX_SECONDS),
    phoneFailures: r.int("RATE_LIMIT_PHONE_FAILURES", 10, 0, MAX_POINTS),
    phoneLockSeconds: r.int("RATE_LIMIT_PHONE_LOCK_SECONDS", HOUR, 1, MAX_SECONDS),
    smsPerPrefixPerHour: r.int("SMS_MAX_PER_PREFIX_PER_HOUR", 20, 0, MAX_POINTS),
    smsPerCountryPerHour: r.int("SMS_MAX_PER_COUNTRY_PER_HOUR", 1000, 0, MAX_POINTS),
    smsPerHour: r.int("SMS_MAX_PER_HOUR", 5000, 0, MAX_POINTS),
    smsAllowedCountries: countries,
    // libphonenumber's type names; a misspelt one would silently block nothing, so it is refused.
    smsBlockedNumberTypes: blockList(
      "SMS_BLOCKED_NUMBER_TYPES",
      "PERSONAL_NUMBER,PAGER,UAN,VOICEMAIL",
      (t) =>
        /^(MOBILE|FIXED_LINE_OR_MOBILE|VOIP|PERSONAL_NUMBER|PAGER|UAN|VOICEMAIL)$/.test(t.toUpperCase())
          ? t.toUpperCase()
          : undefined,
    ),
    smsBlockedPrefixes: blockList("SMS_BLOCKED_PREFIXES", "8816,8818,870,883", (p) =>
      /^\+?\d{1,6}$/.test(p) ? p.replace("+", "") : undefined,
    ),
    smsBudgetShards:
      r.optional("SMS_BUDGET_SHARDS") === undefined ? undefined : r.int("SMS_BUDGET_SHARDS", 8, 1, 1024),
  };
}
