/** One OTP message to one phone. */
export interface SmsMessage {
  /** E.164. */
  readonly to: string;
  /** The full text to deliver. */
  readonly text: string;
  /** The code alone, for providers that template it themselves (MSG91 DLT variables) and for development. */
  readonly code: string;
}

export interface SmsReceipt {
  /** The provider's name, e.g. "twilio". */
  readonly provider: string;
  /** The provider's message id, for support and delivery callbacks. */
  readonly id: string;
}

/** Delivers OTP messages. Failures are thrown as `SmsError`. */
export interface SmsSender {
  readonly name: string;
  send(message: SmsMessage): Promise<SmsReceipt>;
}
