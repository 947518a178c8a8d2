import { AsyncLocalStorage } from "node:async_hooks";
import { type DestinationStream, type Logger as PinoLogger, pino } from "pino";

/** The log surface the service uses; pino's, so fields stay structured. */
export type Logger = Pick<PinoLogger, "info" | "warn" | "error" | "debug" | "child">;

/**
 * The id of the request being served, set by the HTTP layer around each request. Every log line written
 * while serving it carries `reqId`, without threading a logger through the login core.
 */
export const currentRequestId = new AsyncLocalStorage<string>();

export function createLogger(opts: {
  production: boolean;
  level?: string | undefined;
  /** Where lines go (stdout by default); tests capture them. */
  destination?: DestinationStream;
}): PinoLogger {
  return pino(
    {
      level: opts.level ?? (opts.production ? "info" : "debug"),
      base: { service: "otp-auth" },
      mixin() {
        const reqId = currentRequestId.getStore();
        return reqId === undefined ? {} : { reqId };
      },
      // Tokens and codes must never reach logs; these paths catch accidental inclusion in structured fields.
      redact: {
        paths: [
          "otp",
          "code",
          "*.otp",
          "*.code",
          "access_token",
          "refresh_token",
          "accessToken",
          "refreshToken",
          "*.token",
          "authorization",
          "*.authorization",
        ],
        censor: "[redacted]",
      },
    },
    opts.destination,
  );
}

/** Masks all but the country code and the last four digits: "+91******3210". */
export function maskPhone(e164: string): string {
  if (e164.length <= 7) return "*".repeat(e164.length);
  const cc = e164.startsWith("+91") ? 3 : 2;
  return e164.slice(0, cc) + "*".repeat(e164.length - cc - 4) + e164.slice(-4);
}
