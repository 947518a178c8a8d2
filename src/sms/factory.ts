import { CircuitBreaker } from "./circuit-breaker.js";
import type { SmsConfig, SmsProviderName } from "./config.js";
import { DevelopmentSmsSender } from "./development/development.js";
import { FailoverSmsSender, type SmsLog } from "./failover.js";
import { Msg91SmsSender } from "./msg91/msg91.js";
import type { SmsSender } from "./sender.js";
import { TwilioSmsSender } from "./twilio/twilio.js";

export type { SmsLog } from "./failover.js";

export interface SmsSenderDeps {
  /** The breakers' clock, in milliseconds. */
  readonly now?: () => number;
  /** Where the development provider prints its line. */
  readonly print?: (line: string) => void;
}

/**
 * Builds the configured provider, and the fallback behind it, each guarded by its own circuit breaker.
 * Whatever fails, the returned sender throws SmsError: a number's fault as is, anything else as
 * `provider_down` (NoProviderSentError) once no provider could send.
 */
export function createSmsSender(cfg: SmsConfig, log: SmsLog, deps: SmsSenderDeps = {}): SmsSender {
  for (const warning of cfg.warnings) log.warn(`sms config: ${warning}`);
  const names = cfg.fallback ? [cfg.provider, cfg.fallback] : [cfg.provider];
  const providers = names.map((name) => ({
    sender: buildProvider(name, cfg, deps),
    breaker: new CircuitBreaker({
      failureThreshold: cfg.breaker.failures,
      cooldownMs: cfg.breaker.cooldownMs,
      ...(deps.now ? { now: deps.now } : {}),
    }),
  }));
  log.info("sms providers ready", {
    provider: cfg.provider,
    fallback: cfg.fallback ?? null,
    ...(cfg.twilio
      ? { twilioSender: cfg.twilio.messagingServiceSid ? "messaging_service" : "phone_number" }
      : {}),
    timeoutMs: cfg.timeoutMs,
  });
  return new FailoverSmsSender(providers, log);
}

function buildProvider(name: SmsProviderName, cfg: SmsConfig, deps: SmsSenderDeps): SmsSender {
  switch (name) {
    case "development":
      return new DevelopmentSmsSender(cfg.production, deps.print);
    case "twilio": {
      if (!cfg.twilio) throw new Error("SMS config has no twilio section although twilio is used");
      return new TwilioSmsSender({ ...cfg.twilio, timeoutMs: cfg.timeoutMs });
    }
    case "msg91": {
      if (!cfg.msg91) throw new Error("SMS config has no msg91 section although msg91 is used");
      return new Msg91SmsSender({ ...cfg.msg91, timeoutMs: cfg.timeoutMs });
    }
  }
}
