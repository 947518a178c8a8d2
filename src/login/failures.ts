/**
 * The errors adapters throw into the kernel. The kernel turns each into a refusal reason; anything else an
 * adapter throws is a bug and is answered `internal`, never disguised as an outage.
 */

/**
 * The store could not be reached or did not answer in time (connection lost, command timeout, failover in
 * progress). Only this becomes STORE_UNAVAILABLE / 503: the caller may retry.
 */
export class StoreUnavailableError extends Error {
  override readonly name = "StoreUnavailableError";
  constructor(message: string, options?: { cause?: unknown }) {
    super(message, options);
  }
}

/**
 * Why a message could not be sent, by whose fault. Only `provider_down` and `our_config` are worth a
 * failover: the number's own faults would fail on any provider.
 */
export type SmsErrorKind =
  /** The number is malformed or does not exist. */
  | "invalid_number"
  /** The number exists but cannot receive this SMS (landline, unsubscribed, region disabled). */
  | "unreachable_number"
  /** Our account or configuration is wrong (bad credentials, trial limits, unregistered template). */
  | "our_config"
  /** The provider is down, throttling us, or did not answer in time. */
  | "provider_down";

/** An SMS provider's refusal or failure, classified; the only error an `SmsSender` throws. */
export class SmsError extends Error {
  override readonly name = "SmsError";
  constructor(
    readonly kind: SmsErrorKind,
    /** Safe to show to the user (never contains secrets). */
    message: string,
    readonly provider: string,
    /** For operators: provider error code, status and hint. */
    readonly detail?: string,
  ) {
    super(message);
  }
}
