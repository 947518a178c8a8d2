import type { EnvReader } from "../env-reader.js";

export const LOG_LEVELS = ["fatal", "error", "warn", "info", "debug", "trace", "silent"] as const;

export interface OpsConfig {
  /** pino level; `info` in production, `debug` otherwise. */
  readonly logLevel: (typeof LOG_LEVELS)[number];
  /** Whether `GET /metrics` exists and requests are counted. */
  readonly metricsEnabled: boolean;
  /** How long a graceful shutdown waits for in-flight requests before answering them Unavailable. */
  readonly shutdownTimeoutMs: number;
}

/** LOG_LEVEL, METRICS_ENABLED and SHUTDOWN_TIMEOUT_MS. */
export function readOpsConfig(r: EnvReader): OpsConfig {
  return {
    logLevel: r.oneOf("LOG_LEVEL", LOG_LEVELS, r.production ? "info" : "debug"),
    metricsEnabled: r.bool("METRICS_ENABLED", true),
    shutdownTimeoutMs: r.int("SHUTDOWN_TIMEOUT_MS", 10_000, 0, 600_000),
  };
}
