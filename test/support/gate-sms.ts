import type { SmsMessage, SmsReceipt, SmsSender } from "../../src/login/ports.js";

/**
 * An SMS provider that holds every send until the test opens the gate: a slow provider on demand, so requests
 * can be caught in flight (during a shutdown, say).
 */
export class GateSms implements SmsSender {
  readonly name = "gate";
  readonly sent: SmsMessage[] = [];
  #waiting = 0;
  #open = false;
  readonly #release: (() => void)[] = [];

  /** Sends currently held at the gate. */
  get waiting(): number {
    return this.#waiting;
  }

  async send(message: SmsMessage): Promise<SmsReceipt> {
    if (!this.#open) {
      this.#waiting += 1;
      await new Promise<void>((resolve) => this.#release.push(resolve));
      this.#waiting -= 1;
    }
    this.sent.push(message);
    return { provider: this.name, id: `gate-${this.sent.length}` };
  }

  open(): void {
    this.#open = true;
    for (const release of this.#release.splice(0)) release();
  }
}
