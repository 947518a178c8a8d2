export type BreakerState = "closed" | "open" | "half_open";

export interface CircuitBreakerOptions {
  /** Consecutive failures that open the breaker. */
  readonly failureThreshold: number;
  /** How long an open breaker refuses before it lets one trial through. */
  readonly cooldownMs: number;
  /** Milliseconds; injectable so tests move time instead of waiting for it. */
  readonly now?: () => number;
}

/**
 * Stops sending to a provider that keeps failing, so each login does not first wait out its timeout before
 * the fallback is tried. After the cool-down exactly one request goes through as a trial: its success closes
 * the breaker, its failure starts a new cool-down.
 */
export class CircuitBreaker {
  #state: BreakerState = "closed";
  #failures = 0;
  #openedAt = 0;
  #trialStartedAt: number | undefined;
  readonly #now: () => number;

  constructor(private readonly opts: CircuitBreakerOptions) {
    this.#now = opts.now ?? Date.now;
  }

  get state(): BreakerState {
    return this.#state;
  }

  /** Whether a request may go out now. A `true` in half-open claims the single trial: report its outcome. */
  tryAcquire(): boolean {
    if (this.#state === "closed") return true;
    const now = this.#now();
    if (this.#state === "open") {
      if (now - this.#openedAt < this.opts.cooldownMs) return false;
      this.#state = "half_open";
      this.#trialStartedAt = undefined;
    }
    // A trial that never reported (a sender bug) must not hold the breaker half-open forever.
    if (this.#trialStartedAt !== undefined && now - this.#trialStartedAt < this.opts.cooldownMs) return false;
    this.#trialStartedAt = now;
    return true;
  }

  /** The provider answered (including "this number is invalid": that is the provider working). */
  recordSuccess(): void {
    this.#state = "closed";
    this.#failures = 0;
    this.#trialStartedAt = undefined;
  }

  /** The provider was down, timed out, or refused us for our own configuration. */
  recordFailure(): void {
    this.#trialStartedAt = undefined;
    this.#failures += 1;
    if (this.#state === "half_open" || this.#failures >= this.opts.failureThreshold) {
      this.#state = "open";
      this.#openedAt = this.#now();
    }
  }
}
