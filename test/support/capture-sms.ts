import type { SmsMessage, SmsReceipt, SmsSender } from "../../src/login/ports.js";

/**
 * An SMS provider for tests that keeps what it was asked to send, so a test can read the code the way a user
 * reads their phone. It can be told to fail, to exercise "send failed -> no usable code".
 */
export class CaptureSms implements SmsSender {
  readonly name = "capture";
  readonly sent: SmsMessage[] = [];
  failWith: Error | undefined;

  async send(message: SmsMessage): Promise<SmsReceipt> {
    if (this.failWith) throw this.failWith;
    this.sent.push(message);
    return { provider: this.name, id: `cap-${this.sent.length}` };
  }

  /** The last code sent to this E.164 number. */
  lastCode(phone: string): string {
    for (let i = this.sent.length - 1; i >= 0; i--) {
      const m = this.sent[i];
      if (m?.to === phone) return m.code;
    }
    throw new Error(`no code was sent to ${phone}`);
  }
}

let seq = 0;
/** A distinct valid Indian mobile number per call, so tests never share state through a phone. */
export function uniquePhone(): string {
  seq += 1;
  const n = (process.pid * 7919 + seq * 104_729 + Date.now()) % 1_000_000_000;
  return `+919${String(n).padStart(9, "0")}`;
}
