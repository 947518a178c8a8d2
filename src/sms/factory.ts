import type { SmsSender } from "../login/ports.js";
import { CircuitBreaker } from "./circuit-breaker.js";
import type { SmsConfig } from "./config.js";
import { FailoverSmsSender, type SmsLog } from "./failover.js";

export type { SmsLog } from "./failover.js";

export interface SmsSenderDeps {
  /** The breakers' clock, in milliseconds. */
  readonly now?: () => number;
  /** Where a provider that writes to the console writes (tests capture it). */
  readonly print?: (line: string) => void;
}

/**
 * Builds the configured provider, and the fallback behind it, each guarded by its own circuit breaker.
 * Whatever fails, the returned sender throws SmsError: a number's fault as is, anything else as
 * `provider_down` (NoProviderSentError) once no provider could send.
 */
export function createSmsSender(cfg: SmsConfig, log: SmsLog, deps: SmsSenderDeps = {}): SmsSender {
  for (const warning of cfg.warnings) log.warn(`sms config: ${warning}`);
  const providers = cfg.providers.map(({ provider, settings }) => ({
    sender: provider.create(settings, { timeoutMs: cfg.timeoutMs, print: deps.print }),
    breaker: new CircuitBreaker({
      failureThreshold: cfg.breaker.failures,
      cooldownMs: cfg.breaker.cooldownMs,
      ...(deps.now ? { now: deps.now } : {}),
    }),
  }));
  log.info("sms providers ready", {
    provider: cfg.provider,
    fallback: cfg.fallback ?? null,
    ...Object.assign({}, ...cfg.providers.map(({ provider, settings }) => provider.describe?.(settings))),
    timeoutMs: cfg.timeoutMs,
  });
  return new FailoverSmsSender(providers, log);
}
