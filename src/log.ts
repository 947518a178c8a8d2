import { type Logger as PinoLogger, pino } from "pino";

/** The log surface the service uses; pino's, so fields stay structured. */
export type Logger = Pick<PinoLogger, "info" | "warn" | "error" | "debug" | "child">;

export function createLogger(opts: { production: boolean; level?: string }): PinoLogger {
  return pino({
    level: opts.level ?? (opts.production ? "info" : "debug"),
    base: { service: "otp-auth" },
    // Tokens and codes must never reach logs; these paths catch accidental inclusion in structured fields.
    redact: {
      paths: ["otp", "code", "*.otp", "*.code", "access_token", "refresh_token", "*.token"],
      censor: "[redacted]",
    },
  });
}

/** Masks all but the country code and the last four digits: "+91******3210". */
export function maskPhone(e164: string): string {
  if (e164.length <= 7) return "*".repeat(e164.length);
  const cc = e164.startsWith("+91") ? 3 : 2;
  return e164.slice(0, cc) + "*".repeat(e164.length - cc - 4) + e164.slice(-4);
}
