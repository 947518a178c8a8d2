import { AsyncLocalStorage } from "node:async_hooks";
import { parsePhoneNumberFromString } from "libphonenumber-js/max";
import { type DestinationStream, destination, type Logger as PinoLogger, pino } from "pino";
import { maskedPhone } from "./login/model.js";

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
    opts.destination ?? stdoutDestination(),
  );
}

/** Bytes of log lines gathered before a write to stdout. */
export const LOG_BATCH_BYTES = 4096;
/** The longest a gathered line waits for its write, however few lines arrive. */
export const LOG_FLUSH_MS = 100;

/**
 * stdout, written asynchronously and in batches: lines are gathered until LOG_BATCH_BYTES or LOG_FLUSH_MS,
 * then written together while requests go on. A write per line cost each request a hand-off to libuv's thread
 * pool and back (~5 % of a gRPC SendOtp's CPU at moderate load, where few lines share an event-loop turn).
 * pino flushes what is gathered when the process exits; a process killed outright loses at most LOG_FLUSH_MS
 * of lines.
 */
export function stdoutDestination(): DestinationStream {
  return destination({ dest: 1, sync: false, minLength: LOG_BATCH_BYTES, periodicFlush: LOG_FLUSH_MS });
}

/** pino-pretty's factory, as far as we use it. */
type PrettyFactory = (opts: Record<string, unknown>) => DestinationStream;

/**
 * Where a person at a terminal reads the log: pino-pretty (colours, one readable line per entry) when stdout is
 * a TTY outside production and the package is installed; otherwise undefined, meaning JSON lines on stdout as
 * log shippers expect. pino-pretty is optional: without it a terminal gets JSON too.
 */
export async function terminalDestination(opts: {
  production: boolean;
  isTTY: boolean | undefined;
  /** The module to load (tests point it elsewhere). */
  module?: string;
}): Promise<DestinationStream | undefined> {
  if (opts.production || !opts.isTTY) return undefined;
  try {
    // A variable specifier: the type-checker must not require an optional package to be installed.
    const specifier = opts.module ?? "pino-pretty";
    const mod = (await import(specifier)) as { default?: PrettyFactory };
    return mod.default?.({ colorize: true, translateTime: "HH:MM:ss.l", ignore: "pid,hostname,service" });
  } catch {
    return undefined;
  }
}

/**
 * An E.164 string masked by the kernel's one rule (`maskedPhone`): "+91******3210", "+44******0123",
 * "+353*****4567", the calling code found by libphonenumber. A string it cannot read is masked whole.
 */
export function maskPhone(e164: string): string {
  const parsed = parsePhoneNumberFromString(e164);
  return parsed
    ? maskedPhone({ callingCode: parsed.countryCallingCode, nationalNumber: parsed.nationalNumber })
    : "*".repeat(e164.length);
}
