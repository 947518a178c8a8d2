import type { EnvReader } from "../env-reader.js";

export const LOG_LEVELS = ["fatal", "error", "warn", "info", "debug", "trace", "silent"] as const;

/** Shorter tokens are guessable by a scraper with time on its hands. */
export const MIN_METRICS_TOKEN_LENGTH = 16;

export interface OpsConfig {
  /** pino level; `info` in production, `debug` otherwise. */
  readonly logLevel: (typeof LOG_LEVELS)[number];
  /** Whether `GET /metrics` exists and requests are counted. */
  readonly metricsEnabled: boolean;
  /**
   * Set: `/metrics` is served only by a listener of its own on this port (0: any free port), and the API port
   * answers it 404. Unset: `/metrics` is on the API port.
   */
  readonly metricsPort: number | undefined;
  /** Where the metrics listener binds; absent: the API's `HOST`, which the composition reads. */
  readonly metricsHost: string | undefined;
  /** Set: `/metrics` answers 401 unless `Authorization: Bearer <this>`, wherever it is served. */
  readonly metricsToken: string | undefined;
  /** How long a graceful shutdown waits for in-flight requests before answering them Unavailable. */
  readonly shutdownTimeoutMs: number;
}

/** LOG_LEVEL, METRICS_ENABLED, METRICS_PORT, METRICS_HOST, METRICS_TOKEN and SHUTDOWN_TIMEOUT_MS. */
export function readOpsConfig(r: EnvReader): OpsConfig {
  const metricsEnabled = r.bool("METRICS_ENABLED", true);
  const metricsPort =
    r.optional("METRICS_PORT") === undefined ? undefined : r.int("METRICS_PORT", 0, 0, 65535);
  const metricsHost = r.optional("METRICS_HOST");
  const metricsToken = r.optional("METRICS_TOKEN");
  // Each would be silently ignored: a deploy that sets one means something the service would not do.
  if (!metricsEnabled) {
    for (const name of ["METRICS_PORT", "METRICS_HOST", "METRICS_TOKEN"]) {
      if (r.optional(name) !== undefined) r.problems.push(`${name} is set but METRICS_ENABLED=false`);
    }
  } else if (metricsHost !== undefined && metricsPort === undefined) {
    r.problems.push("METRICS_HOST is set without METRICS_PORT: /metrics is on the API port");
  }
  if (metricsToken !== undefined && metricsToken.length < MIN_METRICS_TOKEN_LENGTH) {
    r.problems.push(`METRICS_TOKEN must be at least ${MIN_METRICS_TOKEN_LENGTH} characters`);
  }
  return {
    logLevel: r.oneOf("LOG_LEVEL", LOG_LEVELS, r.production ? "info" : "debug"),
    metricsEnabled,
    metricsPort,
    metricsHost,
    metricsToken,
    shutdownTimeoutMs: r.int("SHUTDOWN_TIMEOUT_MS", 10_000, 0, 600_000),
  };
}
