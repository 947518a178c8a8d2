import type { SmsErrorKind } from "../sms/errors.js";

/** Why a verification failed with a code still live: a wrong guess, or the attempts were used up. */
export type CodeFailure = "wrong" | "exhausted";

/** How one SMS send ended: delivered to the provider, the provider's reason for refusing, or an unknown error. */
export type SmsOutcome = "sent" | SmsErrorKind | "error";

/**
 * What the login core reports as it works, for metrics. The core calls these and knows nothing of what
 * listens (Prometheus, a test); the default does nothing. Every method must be cheap and must not throw.
 */
export interface LoginEvents {
  codeSent(): void;
  codeVerified(): void;
  codeFailed(reason: CodeFailure): void;
  /** A verify found no live code: it expired, was already used, or was never sent. */
  codeExpired(): void;
  smsSend(provider: string, outcome: SmsOutcome): void;
  /** A rate limit refused a request; `limit` names which (e.g. "send_per_phone"). */
  limitRefused(limit: string): void;
}

const nothing = (): void => {};

export const noLoginEvents: LoginEvents = {
  codeSent: nothing,
  codeVerified: nothing,
  codeFailed: nothing,
  codeExpired: nothing,
  smsSend: nothing,
  limitRefused: nothing,
};
