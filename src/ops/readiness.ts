/** One thing the service needs to do its work (the store, say). `probe` rejects when it is not available. */
export interface ReadinessCheck {
  readonly name: string;
  probe(): Promise<void>;
}

export interface ReadinessReport {
  readonly ready: boolean;
  /** Each check by name: "ok" or why not. "shutting down" is one of them. */
  readonly checks: Readonly<Record<string, string>>;
}

/**
 * Whether the service should get traffic: every check passes and it is not shutting down. The one answer
 * behind `GET /readyz` and gRPC health, so a load balancer and a Kubernetes gRPC probe never disagree.
 */
export class Readiness {
  readonly #checks: ReadinessCheck[] = [];
  readonly #waiters = new Set<() => void>();
  #shuttingDown = false;

  /** How long one probe may take before it counts as failed: a hung store must not hang the probe. */
  constructor(private readonly probeTimeoutMs = 1_000) {}

  add(check: ReadinessCheck): this {
    this.#checks.push(check);
    return this;
  }

  get shuttingDown(): boolean {
    return this.#shuttingDown;
  }

  /** From now on the service is not ready, whatever the checks say; watchers are told at once. */
  beginShutdown(): void {
    if (this.#shuttingDown) return;
    this.#shuttingDown = true;
    for (const wake of [...this.#waiters]) wake();
  }

  async report(): Promise<ReadinessReport> {
    const checks: Record<string, string> = {
      "shutting down": this.#shuttingDown ? "shutting down" : "ok",
    };
    const results = await Promise.all(this.#checks.map((c) => this.#run(c)));
    let ready = !this.#shuttingDown;
    this.#checks.forEach((c, i) => {
      const result = results[i] ?? "not run";
      checks[c.name] = result;
      if (result !== "ok") ready = false;
    });
    return { ready, checks };
  }

  /**
   * Resolves when shutdown begins, after `ms`, or when `signal` aborts, whichever is first: watchers re-check
   * at once on shutdown and otherwise poll, since a store outage announces itself to nobody.
   */
  changedOrAfter(ms: number, signal: AbortSignal): Promise<void> {
    if (this.#shuttingDown || signal.aborted) return Promise.resolve();
    return new Promise((resolve) => {
      const done = () => {
        clearTimeout(timer);
        signal.removeEventListener("abort", done);
        this.#waiters.delete(done);
        resolve();
      };
      const timer = setTimeout(done, ms);
      signal.addEventListener("abort", done);
      this.#waiters.add(done);
    });
  }

  async #run(check: ReadinessCheck): Promise<string> {
    let timer: NodeJS.Timeout | undefined;
    const timeout = new Promise<string>((resolve) => {
      timer = setTimeout(() => resolve(`no answer within ${this.probeTimeoutMs} ms`), this.probeTimeoutMs);
    });
    try {
      return await Promise.race([
        check.probe().then(
          () => "ok",
          (err: unknown) => (err instanceof Error ? err.message : String(err)) || "failed",
        ),
        timeout,
      ]);
    } finally {
      clearTimeout(timer);
    }
  }
}
