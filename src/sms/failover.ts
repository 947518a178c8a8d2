import { maskPhone } from "../log.js";
import { SmsError } from "../login/failures.js";
import type { SmsMessage, SmsReceipt, SmsSender } from "../login/ports.js";
import { reqIdField } from "../login/request-log.js";
import type { CircuitBreaker } from "./circuit-breaker.js";

export interface SmsLog {
  info(msg: string, extra?: object): void;
  warn(msg: string, extra?: object): void;
  error(msg: string, extra?: object): void;
}

export interface GuardedProvider {
  readonly sender: SmsSender;
  readonly breaker: CircuitBreaker;
}

/** What happened at one provider during a send that no provider completed. */
export interface ProviderAttempt {
  readonly provider: string;
  /** Absent when the provider was skipped because its breaker is open. */
  readonly error?: SmsError;
}

/**
 * No provider sent the message. Always `provider_down`, whatever each provider said, because to the caller
 * it means one thing: no code went out, try again later. `attempts` keeps each provider's own error.
 */
export class NoProviderSentError extends SmsError {
  constructor(
    provider: string,
    readonly attempts: readonly ProviderAttempt[],
  ) {
    const detail = attempts
      .map((a) =>
        a.error
          ? `${a.provider}: ${a.error.kind}: ${a.error.detail ?? a.error.message}`
          : `${a.provider}: skipped, circuit open`,
      )
      .join("; ");
    super(
      "provider_down",
      "We could not send the SMS right now. Please try again in a few minutes.",
      provider,
      detail,
    );
  }
}

/**
 * Tries providers in order. It moves on only when the failure is ours or the provider's (`provider_down`,
 * `our_config`); a number's own fault is thrown at once, since another provider would fail the same way and
 * the user would only wait longer for the same answer.
 */
export class FailoverSmsSender implements SmsSender {
  readonly name: string;

  constructor(
    private readonly providers: readonly GuardedProvider[],
    private readonly log: SmsLog,
  ) {
    if (providers.length === 0) throw new Error("FailoverSmsSender needs at least one provider");
    this.name = providers.map((p) => p.sender.name).join(">");
  }

  sendVia(provider: string, message: SmsMessage): Promise<SmsReceipt> {
    return sendVia(this.providers, provider, message);
  }

  async send(message: SmsMessage): Promise<SmsReceipt> {
    const attempts: ProviderAttempt[] = [];
    for (const { sender, breaker } of this.providers) {
      if (!breaker.tryAcquire()) {
        attempts.push({ provider: sender.name });
        continue;
      }
      let error: SmsError;
      try {
        const receipt = await sender.send(message);
        breaker.recordSuccess();
        if (attempts.length > 0) {
          this.log.warn("sms sent by a fallback provider", {
            ...reqIdField(message.requestId),
            provider: sender.name,
            skipped: summary(attempts),
          });
        }
        return receipt;
      } catch (err) {
        error = asSmsError(err, sender.name);
      }
      if (error.kind === "invalid_number" || error.kind === "unreachable_number") {
        // The provider did its job; the number is the problem.
        breaker.recordSuccess();
        throw error;
      }
      breaker.recordFailure();
      this.log.warn("sms provider failed", {
        ...reqIdField(message.requestId),
        provider: sender.name,
        kind: error.kind,
        detail: error.detail,
        to: maskPhone(message.to),
        breaker: breaker.state,
      });
      attempts.push({ provider: sender.name, error });
    }
    throw new NoProviderSentError(this.name, attempts);
  }
}

/** Sends through the named provider alone, behind its breaker: a reroute must not fall back to the first. */
export async function sendVia(
  providers: readonly GuardedProvider[],
  name: string,
  message: SmsMessage,
): Promise<SmsReceipt> {
  const guarded = providers.find((p) => p.sender.name === name);
  if (!guarded) throw new Error(`no SMS provider named ${name}`);
  return new FailoverSmsSender([guarded], { info() {}, warn() {}, error() {} }).send(message);
}

function asSmsError(err: unknown, provider: string): SmsError {
  if (err instanceof SmsError) return err;
  // A sender that throws anything else has a bug; treat it like an outage so the fallback still gets a try.
  const detail = err instanceof Error ? `${err.name}: ${err.message}` : String(err);
  return new SmsError(
    "provider_down",
    "We could not send the SMS right now.",
    provider,
    `unexpected: ${detail}`,
  );
}

function summary(attempts: readonly ProviderAttempt[]): string {
  return attempts.map((a) => `${a.provider}=${a.error?.kind ?? "circuit_open"}`).join(",");
}
