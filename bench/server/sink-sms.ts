import type { SmsMessage, SmsReceipt, SmsSender } from "../../src/login/ports.js";

/**
 * The bench's SMS provider: accepts every message at once. It exists only in the bench server (it is not an
 * `SMS_PROVIDER` value, so production config cannot select it). While the driver prepares VerifyOtp it keeps
 * the codes, which it hands over only through the bench server's IPC channel to the parent process.
 */
export class BenchSinkSms implements SmsSender {
  readonly name = "bench-sink";
  recording = false;
  #sent = 0;
  #codes: [string, string][] = [];

  async send(message: SmsMessage): Promise<SmsReceipt> {
    this.#sent += 1;
    if (this.recording) this.#codes.push([message.to, message.code]);
    return { provider: this.name, id: String(this.#sent) };
  }

  /** The codes recorded so far, forgotten here once handed over. */
  take(): [string, string][] {
    const codes = this.#codes;
    this.#codes = [];
    return codes;
  }
}
