import type { SmsMessage, SmsReceipt, SmsSender } from "../sender.js";

/**
 * Prints the code instead of sending it, so the service runs with no SMS account. It is the only place a code
 * is ever written out, and it refuses to exist in production.
 */
export class DevelopmentSmsSender implements SmsSender {
  readonly name = "development";
  #seq = 0;

  constructor(
    production: boolean,
    private readonly print: (line: string) => void = (line) => process.stdout.write(`${line}\n`),
  ) {
    if (production)
      throw new Error("the development SMS provider prints codes and is refused when NODE_ENV=production");
  }

  async send(message: SmsMessage): Promise<SmsReceipt> {
    this.#seq += 1;
    this.print(`[development sms] OTP for ${message.to}: ${message.code}`);
    return { provider: this.name, id: `dev-${this.#seq}` };
  }
}
