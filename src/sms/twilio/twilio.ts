import type twilio from "twilio";
import type { SmsMessage, SmsReceipt, SmsSender } from "../../login/ports.js";
import { twilioSdk } from "./sdk.js";
import { classifyTwilioError } from "./twilio-errors.js";
import { createTwilioHttpClient, withSendSignal } from "./twilio-http-client.js";

export interface TwilioSenderOptions {
  readonly accountSid: string;
  readonly authToken: string;
  /** Preferred over `phoneNumber`: the service picks the sender (alphanumeric ID, DLT-registered in India). */
  readonly messagingServiceSid?: string | undefined;
  readonly phoneNumber?: string | undefined;
  readonly apiBaseUrl: string;
  /** The whole send, 429 retries included, gets this long before it counts as the provider being down. */
  readonly timeoutMs: number;
  /** Where Twilio posts delivery status updates (our /webhooks/twilio/status), if anywhere. */
  readonly statusCallbackUrl?: string | undefined;
}

// Twilio's backoff waits up to 100·2^n ms (full jitter), so two retries cost at most ~0.6 s of waiting.
const MAX_429_RETRIES = 2;
const MAX_RETRY_DELAY_MS = 1000;

/** Sends through Twilio's Messages API with the official SDK. */
export class TwilioSmsSender implements SmsSender {
  readonly name = "twilio";
  readonly #messages: twilio.Twilio["messages"];

  constructor(private readonly opts: TwilioSenderOptions) {
    if (!opts.messagingServiceSid && !opts.phoneNumber) {
      throw new Error("Twilio needs TWILIO_MESSAGING_SERVICE_SID or TWILIO_PHONE_NUMBER");
    }
    const httpClient = createTwilioHttpClient({
      baseUrl: opts.apiBaseUrl,
      timeoutMs: opts.timeoutMs,
      maxRetries: MAX_429_RETRIES,
      maxRetryDelayMs: MAX_RETRY_DELAY_MS,
    });
    // Read now: the SDK loads the Messages API on first access, which must not eat into a send's timeout.
    this.#messages = twilioSdk()(opts.accountSid, opts.authToken, { httpClient }).messages;
  }

  async send(message: SmsMessage): Promise<SmsReceipt> {
    const signal = AbortSignal.timeout(this.opts.timeoutMs);
    const params = {
      to: message.to,
      body: message.text,
      ...(this.opts.messagingServiceSid
        ? { messagingServiceSid: this.opts.messagingServiceSid }
        : this.opts.phoneNumber
          ? { from: this.opts.phoneNumber }
          : {}),
      ...(this.opts.statusCallbackUrl ? { statusCallback: this.opts.statusCallbackUrl } : {}),
    };
    try {
      // Inside the try: the SDK throws some argument errors synchronously.
      const created = await untilAborted(
        withSendSignal(signal, () => this.#messages.create(params)),
        signal,
      );
      return { provider: this.name, id: created.sid };
    } catch (err) {
      throw classifyTwilioError(err, signal.aborted);
    }
  }
}

/**
 * Settles when `work` does or when `signal` fires, whichever is first: the abort cancels the request in
 * flight at once, but a 429 backoff pause would otherwise still be waited out.
 */
function untilAborted<T>(work: Promise<T>, signal: AbortSignal): Promise<T> {
  return new Promise<T>((resolve, reject) => {
    const onAbort = () => reject(signal.reason);
    if (signal.aborted) onAbort();
    signal.addEventListener("abort", onAbort, { once: true });
    work.then(
      (value) => {
        signal.removeEventListener("abort", onAbort);
        resolve(value);
      },
      (err: unknown) => {
        signal.removeEventListener("abort", onAbort);
        reject(err);
      },
    );
  });
}
