import { parsePhoneNumberFromString } from "libphonenumber-js/max";
import { type DestinationStream, destination, type Logger as PinoLogger, pino } from "pino";
import { censorNested, errorSerializer, REDACTED, SECRET_FIELDS } from "./log-redaction.js";
import { maskedPhone } from "./login/model.js";

/** The log surface the service uses; pino's, so fields stay structured. */
export type Logger = Pick<PinoLogger, "info" | "warn" | "error" | "debug" | "child">;

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
      // Tokens and codes must never reach logs; these catch accidental inclusion in structured fields: the
      // exact top-level paths by pino's redaction, the same names one level down by src/log-redaction.ts.
      redact: { paths: [...SECRET_FIELDS], censor: REDACTED },
      formatters: { log: censorNested },
      serializers: { err: errorSerializer },
    },
    opts.destination ?? stdoutDestination(),
  );
}

/** Bytes of log lines gathered before a write to stdout. */
export const LOG_BATCH_BYTES = 4096;
/** The longest a gathered line waits for its write, however few lines arrive. */
export const LOG_FLUSH_MS = 100;

/**
 * Bytes of log lines that may wait for a stdout that does not take them (a stalled log collector). Past it,
 * new lines are dropped and counted on stderr instead of growing the heap until the process is killed: every
 * request, a caller's refused ones too, writes a line.
 */
export const LOG_BUFFER_MAX_BYTES = 16 * 1024 * 1024;
/** How often dropped lines are reported on stderr while stdout is stalled. */
export const LOG_DROP_REPORT_MS = 1_000;

/**
 * stdout, written asynchronously and in batches: lines are gathered until LOG_BATCH_BYTES or LOG_FLUSH_MS,
 * then written together while requests go on. A write per line cost each request a hand-off to libuv's thread
 * pool and back (~5 % of a gRPC SendOtp's CPU at moderate load, where few lines share an event-loop turn).
 * pino flushes what is gathered when the process exits; a process killed outright loses at most LOG_FLUSH_MS
 * of lines.
 */
function stdoutDestination(): DestinationStream {
  const stream = destination({
    dest: 1,
    sync: false,
    minLength: LOG_BATCH_BYTES,
    periodicFlush: LOG_FLUSH_MS,
    maxLength: LOG_BUFFER_MAX_BYTES,
  });
  // Said on stderr (not through the stalled stdout), at most once per LOG_DROP_REPORT_MS, with the count.
  let dropped = 0;
  stream.on("drop", () => {
    dropped += 1;
    if (dropped > 1) return;
    setTimeout(() => {
      process.stderr.write(
        `otp-auth: stdout is not keeping up; ${dropped} log line(s) dropped ` +
          `(${LOG_BUFFER_MAX_BYTES} bytes already waiting)\n`,
      );
      dropped = 0;
    }, LOG_DROP_REPORT_MS).unref();
  });
  return stream;
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
