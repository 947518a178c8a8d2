import { SmsError } from "../login/failures.js";
import type { SmsMessage, SmsReceipt, SmsSender } from "../login/ports.js";
import { reqIdField } from "../login/request-log.js";
import type { SmsLog } from "./failover.js";

export interface BoundedSmsOptions {
  /** Sends allowed in flight at once in this process (SMS_MAX_IN_FLIGHT); 0 means no cap. */
  readonly maxInFlight: number;
  /** The shortest gap between two "cap reached" log lines, so a flood of refusals is one line, not thousands. */
  readonly logEveryMs?: number;
  /** Milliseconds; injectable so tests move time instead of waiting for it. */
  readonly now?: () => number;
}

/**
 * Caps the SMS sends in flight in this process. A provider that hangs keeps each send (its request, code and
 * sockets) alive until SMS_TIMEOUT_MS; under load that is unbounded memory. Past the cap a send is refused at
 * once as `provider_down`, which the kernel answers with SMS_UNAVAILABLE after discarding the code and giving
 * back the limits it counted, exactly as for a provider that failed.
 */
export class BoundedSmsSender implements SmsSender {
  readonly name: string;
  /** The inner sender's `sendVia` (a reroute through one provider), under the same cap; absent when it has none. */
  readonly sendVia?: (provider: string, message: SmsMessage) => Promise<SmsReceipt>;
  #inFlight = 0;
  #refused = 0;
  #refusedSinceLog = 0;
  #loggedAt: number | undefined;
  readonly #max: number;
  readonly #logEveryMs: number;
  readonly #now: () => number;

  constructor(
    private readonly inner: SmsSender,
    private readonly log: SmsLog,
    opts: BoundedSmsOptions,
  ) {
    // Transparent to what reports by provider name (metrics, logs, receipts).
    this.name = inner.name;
    this.#max = opts.maxInFlight;
    this.#logEveryMs = opts.logEveryMs ?? 10_000;
    this.#now = opts.now ?? Date.now;
    const via = inner.sendVia?.bind(inner);
    if (via) this.sendVia = (provider, message) => this.#capped(message, () => via(provider, message));
  }

  /** Sends handed to the provider and not yet answered. */
  get inFlight(): number {
    return this.#inFlight;
  }

  /** Sends refused because the cap was reached, since start. */
  get refused(): number {
    return this.#refused;
  }

  /** The cap; 0 when there is none. */
  get max(): number {
    return this.#max;
  }

  send(message: SmsMessage): Promise<SmsReceipt> {
    return this.#capped(message, () => this.inner.send(message));
  }

  async #capped(message: SmsMessage, send: () => Promise<SmsReceipt>): Promise<SmsReceipt> {
    if (this.#max > 0 && this.#inFlight >= this.#max) throw this.#refuse(message);
    this.#inFlight += 1;
    try {
      return await send();
    } finally {
      this.#inFlight -= 1;
    }
  }

  #refuse(message: SmsMessage): SmsError {
    this.#refused += 1;
    this.#refusedSinceLog += 1;
    const now = this.#now();
    if (this.#loggedAt === undefined || now - this.#loggedAt >= this.#logEveryMs) {
      this.log.error(
        "sms sends refused: SMS_MAX_IN_FLIGHT sends are already waiting on the provider, which is slow or hanging",
        {
          ...reqIdField(message.requestId),
          provider: this.name,
          maxInFlight: this.#max,
          // Since the previous line of this kind, and since start.
          refused: this.#refusedSinceLog,
          refusedTotal: this.#refused,
        },
      );
      this.#loggedAt = now;
      this.#refusedSinceLog = 0;
    }
    return new SmsError(
      "provider_down",
      "We could not send the SMS right now. Please try again in a few minutes.",
      this.name,
      `in-flight cap reached: ${this.#max} sends already waiting (SMS_MAX_IN_FLIGHT)`,
    );
  }
}
