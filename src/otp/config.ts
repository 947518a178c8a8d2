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
  /** How long a verification's record outlives its newest code. */
  readonly retentionSeconds: number;
  /** TEST_PHONE_NUMBERS: E.164 -> its fixed code. Never logged. */
  readonly testNumbers: ReadonlyMap<string, string>;
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
  const code = readCodeSettings(r);
  return {
    ...code,
    secret,
    previousSecret,
    retentionSeconds: r.int("VERIFICATION_RETENTION_SECONDS", 86_400, 1, 30 * 86_400),
    testNumbers: readTestNumbers(r, code.length),
  };
}

/**
 * TEST_PHONE_NUMBERS="+919999900001:123456,+919999900002:654321": numbers that get a fixed code and no SMS
 * (store reviewers, end-to-end tests). A fixed code is a standing password, so production refuses them unless
 * TEST_PHONE_NUMBERS_IN_PRODUCTION=true says someone meant it. Problems never echo a code.
 */
function readTestNumbers(r: EnvReader, length: number): ReadonlyMap<string, string> {
  const numbers = new Map<string, string>();
  const items = r.list("TEST_PHONE_NUMBERS");
  for (const [i, item] of items.entries()) {
    const [phone = "", code = "", ...rest] = item.split(":").map((p) => p.trim());
    if (!/^\+[1-9]\d{6,14}$/.test(phone) || rest.length > 0) {
      r.problems.push(
        `TEST_PHONE_NUMBERS entry ${i + 1} must be an E.164 number and a code, "+919999900001:123456"`,
      );
    } else if (!new RegExp(`^\\d{${length}}$`).test(code)) {
      r.problems.push(
        `TEST_PHONE_NUMBERS entry ${i + 1} (${phone}) needs a code of exactly OTP_LENGTH (${length}) digits`,
      );
    } else {
      numbers.set(phone, code);
    }
  }
  // Read whether or not it applies, so it is one of the variables the readers know (.env.example).
  const allowedInProduction = r.bool("TEST_PHONE_NUMBERS_IN_PRODUCTION", false);
  if (r.production && items.length > 0 && !allowedInProduction) {
    r.problems.push(
      `TEST_PHONE_NUMBERS is refused ${IN_PRODUCTION} (fixed codes sign anyone in); set TEST_PHONE_NUMBERS_IN_PRODUCTION=true if that is meant`,
    );
  }
  return numbers;
}
