import { SmsError } from "../../login/failures.js";
import type { SmsMessage, SmsReceipt, SmsSender } from "../../login/ports.js";

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
    // Refused as a real provider would, so a number that skipped normalisation shows up in development too.
    if (!/^\+[1-9]\d{6,14}$/.test(message.to)) {
      throw new SmsError(
        "invalid_number",
        "This phone number is not valid. Check it and try again.",
        this.name,
        "the number is not E.164",
      );
    }
    this.#seq += 1;
    this.print(`[development sms] OTP for ${message.to}: ${message.code}`);
    return { provider: this.name, id: `dev-${this.#seq}` };
  }
}
