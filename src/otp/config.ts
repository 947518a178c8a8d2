import { type EnvReader, IN_PRODUCTION } from "../env-reader.js";

/** What a code looks like and how long it lives: all the CLI needs to send one as the service would. */
export interface CodeSettings {
  readonly length: number;
  readonly ttlSeconds: number;
  readonly maxAttempts: number;
}

export interface OtpConfig extends CodeSettings {
  /** Absent in development: a random secret is generated per process. */
  readonly secret: string | undefined;
  /** OTP_SECRET_PREVIOUS: codes stored under it still verify until they expire. */
  readonly previousSecret: string | undefined;
}

/** OTP_LENGTH, OTP_TTL_SECONDS and OTP_MAX_ATTEMPTS. */
export function readCodeSettings(r: EnvReader): CodeSettings {
  return {
    length: r.int("OTP_LENGTH", 6, 4, 10),
    ttlSeconds: r.int("OTP_TTL_SECONDS", 600, 1, 86_400),
    maxAttempts: r.int("OTP_MAX_ATTEMPTS", 5, 1, 100),
  };
}

/** The code settings, OTP_SECRET (which production requires) and OTP_SECRET_PREVIOUS. */
export function readOtpConfig(r: EnvReader): OtpConfig {
  const secret = r.secret(
    "OTP_SECRET",
    r.production ? `${IN_PRODUCTION} (codes are stored as an HMAC under it)` : undefined,
  );
  if (secret !== undefined && secret.length < 32) {
    r.problems.push("OTP_SECRET must be at least 32 characters (e.g. `openssl rand -base64 48`)");
  }
  const previousSecret = r.optional("OTP_SECRET_PREVIOUS");
  if (previousSecret !== undefined && previousSecret.length < 32) {
    r.problems.push("OTP_SECRET_PREVIOUS must be at least 32 characters, as OTP_SECRET");
  }
  if (previousSecret !== undefined && secret === undefined) {
    r.problems.push("OTP_SECRET_PREVIOUS is set without OTP_SECRET: set the new secret as OTP_SECRET");
  }
  return { ...readCodeSettings(r), secret, previousSecret };
}
