import { createPrivateKey, type KeyObject } from "node:crypto";
import { isIpOrCidr } from "./http/client-ip.js";
import { readSmsConfig, SMS_PROVIDERS, type SmsConfig } from "./sms/config.js";

/**
 * Everything the service reads from the environment, validated once at start-up. Every problem names the
 * variable, and all problems are reported together so a deploy is fixed in one round.
 */
export interface Config {
  readonly production: boolean;
  readonly host: string;
  readonly port: number;
  /** Absent in development: the embedded in-memory store is used instead. */
  readonly redisUrl: string | undefined;
  readonly defaultCountry: string;
  readonly appName: string;
  readonly otp: {
    readonly length: number;
    readonly ttlSeconds: number;
    readonly maxAttempts: number;
    /** Absent in development: a random secret is generated per process. */
    readonly secret: string | undefined;
  };
  readonly jwt: {
    /** Absent in development: a key pair is generated per process. */
    readonly privateKey: KeyObject | undefined;
    readonly keyId: string | undefined;
    readonly issuer: string;
    readonly audience: string;
    readonly accessTtlSeconds: number;
    readonly refreshTtlSeconds: number;
  };
  /** Providers, failover, timeouts and the message text; see src/sms/config.ts. */
  readonly sms: SmsConfig;
  readonly limits: LimitSettings;
  /** IPs and CIDRs of proxies whose X-Forwarded-For is believed; empty: the socket peer is the client. */
  readonly trustedProxies: readonly string[];
  /** pino level; `info` in production, `debug` otherwise. */
  readonly logLevel: string;
  /** Whether `GET /metrics` exists and requests are counted. */
  readonly metricsEnabled: boolean;
  /** How long a graceful shutdown waits for in-flight requests before answering them Unavailable. */
  readonly shutdownTimeoutMs: number;
  /** Browser origins allowed to call cross-origin (CORS); see src/http/cors.ts. */
  readonly cors: {
    readonly origins: readonly string[];
    /** Any http://localhost or 127.0.0.1 origin: the development default, for local front-end servers. */
    readonly loopback: boolean;
  };
  /** The raw environment, for components that validate their own variables (SMS providers). */
  readonly env: Readonly<Record<string, string | undefined>>;
}

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
}

export class ConfigError extends Error {
  override readonly name = "ConfigError";
  constructor(readonly problems: readonly string[]) {
    super(`invalid configuration:\n${problems.map((p) => `  - ${p}`).join("\n")}`);
  }
}

export { SMS_PROVIDERS };
export const LOG_LEVELS = ["fatal", "error", "warn", "info", "debug", "trace", "silent"] as const;

/** Collects problems instead of throwing at the first, so all are reported at once. */
export class EnvReader {
  readonly problems: string[] = [];
  constructor(readonly env: Readonly<Record<string, string | undefined>>) {}

  string(name: string, fallback: string): string {
    return this.optional(name) ?? fallback;
  }

  /** Unset and empty both mean "not given": an empty line in a .env file is not a value. */
  optional(name: string): string | undefined {
    const v = this.env[name]?.trim();
    return v === undefined || v === "" ? undefined : v;
  }

  int(name: string, fallback: number, min: number, max: number): number {
    const raw = this.optional(name);
    if (raw === undefined) return fallback;
    if (!/^\d+$/.test(raw)) {
      this.problems.push(`${name} must be a whole number, got "${raw}"`);
      return fallback;
    }
    const n = Number(raw);
    if (n < min || n > max) {
      this.problems.push(`${name} must be between ${min} and ${max}, got ${n}`);
      return fallback;
    }
    return n;
  }

  oneOf<T extends string>(name: string, allowed: readonly T[], fallback: T): T {
    const raw = this.optional(name);
    if (raw === undefined) return fallback;
    if (!(allowed as readonly string[]).includes(raw)) {
      this.problems.push(`${name} must be one of ${allowed.join(", ")}, got "${raw}"`);
      return fallback;
    }
    return raw as T;
  }

  bool(name: string, fallback: boolean): boolean {
    const raw = this.optional(name)?.toLowerCase();
    if (raw === undefined) return fallback;
    if (["true", "1", "yes", "on"].includes(raw)) return true;
    if (["false", "0", "no", "off"].includes(raw)) return false;
    this.problems.push(`${name} must be true or false, got "${raw}"`);
    return fallback;
  }

  require(name: string, why: string): void {
    if (this.optional(name) === undefined) this.problems.push(`${name} is required ${why}`);
  }
}

export function loadConfig(env: Readonly<Record<string, string | undefined>> = process.env): Config {
  const r = new EnvReader(env);
  const production = env.NODE_ENV === "production";
  const inProduction = "when NODE_ENV=production";

  const smsProvider = r.oneOf("SMS_PROVIDER", SMS_PROVIDERS, "development");
  const appName = r.string("APP_NAME", "IndoStar Naturals");
  if (production) {
    r.require(
      "REDIS_URL",
      `${inProduction} (the in-memory store loses codes, users and sessions on restart)`,
    );
    if (r.optional("SMS_PROVIDER") === undefined) {
      r.problems.push(`SMS_PROVIDER is required ${inProduction}: set it to twilio or msg91`);
    } else if (smsProvider === "development") {
      r.problems.push(`SMS_PROVIDER=development prints codes to the console and is refused ${inProduction}`);
    }
    r.require("OTP_SECRET", `${inProduction} (codes are stored as an HMAC under it)`);
    r.require("JWT_PRIVATE_KEY", `${inProduction} (a PKCS8 PEM Ed25519 key; tokens must survive restarts)`);
  }

  const secret = r.optional("OTP_SECRET");
  if (secret !== undefined && secret.length < 32) {
    r.problems.push("OTP_SECRET must be at least 32 characters (e.g. `openssl rand -base64 48`)");
  }

  const redisUrl = r.optional("REDIS_URL");
  if (redisUrl !== undefined && !/^rediss?:\/\//.test(redisUrl)) {
    r.problems.push(`REDIS_URL must start with redis:// or rediss://, got "${redisUrl}"`);
  }

  const defaultCountry = r.string("DEFAULT_COUNTRY", "IN").toUpperCase();
  if (!/^[A-Z]{2}$/.test(defaultCountry)) {
    r.problems.push(
      `DEFAULT_COUNTRY must be a two-letter ISO 3166 region code such as IN, got "${defaultCountry}"`,
    );
  }

  const config: Config = {
    production,
    host: r.string("HOST", "0.0.0.0"),
    port: r.int("PORT", 8000, 0, 65535),
    redisUrl,
    defaultCountry,
    appName,
    otp: {
      length: r.int("OTP_LENGTH", 6, 4, 10),
      ttlSeconds: r.int("OTP_TTL_SECONDS", 600, 1, 86_400),
      maxAttempts: r.int("OTP_MAX_ATTEMPTS", 5, 1, 100),
      secret,
    },
    jwt: {
      privateKey: readPrivateKey(r),
      keyId: r.optional("JWT_KEY_ID"),
      issuer: r.string("JWT_ISSUER", "otp-auth"),
      audience: r.string("JWT_AUDIENCE", "otp-auth"),
      accessTtlSeconds: r.int("ACCESS_TOKEN_TTL_SECONDS", 900, 1, 86_400),
      refreshTtlSeconds: r.int("REFRESH_TOKEN_TTL_SECONDS", 30 * 86_400, 1, 365 * 86_400),
    },
    sms: readSmsConfig(r, production, appName),
    limits: readLimits(r),
    trustedProxies: readTrustedProxies(r),
    logLevel: r.oneOf("LOG_LEVEL", LOG_LEVELS, production ? "info" : "debug"),
    metricsEnabled: r.bool("METRICS_ENABLED", true),
    shutdownTimeoutMs: r.int("SHUTDOWN_TIMEOUT_MS", 10_000, 0, 600_000),
    cors: readCors(r, production),
    env,
  };
  if (r.problems.length > 0) throw new ConfigError(r.problems);
  return config;
}

const HOUR = 3600;
const MAX_POINTS = 1_000_000_000;
const MAX_SECONDS = 7 * 86_400;

function readLimits(r: EnvReader): LimitSettings {
  const ip: Window = {
    points: r.int("RATE_LIMIT_IP_POINTS", 5, 0, MAX_POINTS),
    durationSeconds: r.int("RATE_LIMIT_IP_DURATION_SECONDS", 15 * 60, 1, MAX_SECONDS),
  };
  const countries = (r.optional("SMS_ALLOWED_COUNTRIES") ?? "")
    .split(",")
    .map((c) => c.trim().toUpperCase())
    .filter((c) => c !== "");
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
  };
}

function readTrustedProxies(r: EnvReader): string[] {
  const entries = (r.optional("TRUSTED_PROXIES") ?? "")
    .split(",")
    .map((e) => e.trim())
    .filter((e) => e !== "");
  for (const e of entries) {
    if (!isIpOrCidr(e)) {
      r.problems.push(`TRUSTED_PROXIES must list IP addresses or CIDRs such as 10.0.0.0/8; got "${e}"`);
    }
  }
  return entries;
}

function readPrivateKey(r: EnvReader): KeyObject | undefined {
  // Environments often carry PEM newlines as literal "\n".
  const pem = r.optional("JWT_PRIVATE_KEY")?.replace(/\\n/g, "\n");
  if (pem === undefined) return undefined;
  try {
    const key = createPrivateKey({ key: pem, format: "pem" });
    if (key.asymmetricKeyType !== "ed25519") {
      r.problems.push(
        `JWT_PRIVATE_KEY must be an Ed25519 key (EdDSA), got ${key.asymmetricKeyType ?? "unknown"}`,
      );
      return undefined;
    }
    return key;
  } catch {
    r.problems.push(
      "JWT_PRIVATE_KEY is not a PKCS8 PEM private key (try `openssl genpkey -algorithm ed25519`)",
    );
    return undefined;
  }
}

/** `CORS_ORIGINS`: comma-separated exact origins. Unset: loopback origins in development, none in production. */
function readCors(r: EnvReader, production: boolean): Config["cors"] {
  const raw = r.optional("CORS_ORIGINS");
  if (raw === undefined) return { origins: [], loopback: !production };
  const origins: string[] = [];
  for (const item of raw.split(",")) {
    const o = item.trim();
    if (o === "") continue;
    let url: URL | undefined;
    try {
      url = new URL(o);
    } catch {
      url = undefined;
    }
    // Browsers send an origin with no path and no trailing slash, and we compare exactly.
    if (!url || (url.protocol !== "http:" && url.protocol !== "https:") || url.origin !== o) {
      r.problems.push(`CORS_ORIGINS entries must be origins like https://app.example.com, got "${o}"`);
    } else origins.push(o);
  }
  return { origins, loopback: false };
}
