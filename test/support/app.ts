import type { AddressInfo } from "node:net";
import { pino } from "pino";
import { type App, buildApp } from "../../src/app.js";
import { loadConfig } from "../../src/config.js";
import { CaptureSms } from "./capture-sms.js";

export interface RunningApp {
  readonly app: App;
  readonly sms: CaptureSms;
  readonly baseUrl: string;
  readonly port: number;
  /** `http://127.0.0.1:<port>/metrics` of the metrics listener, when METRICS_PORT gave the app one. */
  readonly metricsUrl: string | undefined;
  close(): Promise<void>;
}

/**
 * Limits high enough that tests which are not about abuse never meet them (many send several codes from one
 * address to one phone). Tests of the limits pass their own values, which win.
 */
export const GENEROUS_LIMITS: Readonly<Record<string, string>> = {
  RATE_LIMIT_IP_POINTS: "1000000",
  RATE_LIMIT_PHONE_SEND_POINTS: "1000000",
  RATE_LIMIT_PHONE_COOLDOWN_SECONDS: "0",
  SMS_MAX_PER_PREFIX_PER_HOUR: "1000000",
  SMS_MAX_PER_COUNTRY_PER_HOUR: "1000000",
  SMS_MAX_PER_HOUR: "1000000",
};

/**
 * The gRPC path the run tests: unset, the service's default (the fast path); the second vitest project sets
 * GRPC_FAST_PATH=false to run the gRPC suites through connect-node alone (vitest.config.ts).
 */
export const GRPC_PATH_ENV: Readonly<Record<string, string>> =
  process.env.GRPC_FAST_PATH === undefined ? {} : { GRPC_FAST_PATH: process.env.GRPC_FAST_PATH };

/** The real service on 127.0.0.1:0 with the given environment and an SMS provider the test can read. */
export async function startApp(
  env: Record<string, string | undefined> = {},
  opts: {
    readonly configuredSms?: boolean;
    /** Receives the app's error lines (JSON), so a test can say why a call was answered `internal`. */
    readonly errorLines?: string[];
  } = {},
): Promise<RunningApp> {
  const config = loadConfig({ NODE_ENV: "test", ...GENEROUS_LIMITS, ...GRPC_PATH_ENV, ...env });
  const sms = new CaptureSms();
  const errorLines = opts.errorLines;
  const log = errorLines
    ? pino({ level: "error" }, { write: (line: string) => void errorLines.push(line) })
    : pino({ level: process.env.TEST_LOG_LEVEL ?? "silent" });
  // `configuredSms`: the providers SMS_PROVIDER names (pointed at local fakes), not the capturing one.
  const app = await buildApp(config, log, opts.configuredSms ? {} : { sms });
  const addr: AddressInfo = await app.server.listen(0, "127.0.0.1");
  // As main does, but on any free port: several apps run side by side.
  const metricsAddr = await app.metricsListener?.listen(0, "127.0.0.1");
  return {
    app,
    sms,
    port: addr.port,
    metricsUrl: metricsAddr && `http://127.0.0.1:${metricsAddr.port}/metrics`,
    baseUrl: `http://127.0.0.1:${addr.port}`,
    close: () => app.close(),
  };
}
