import { twilioSdk } from "./sdk.js";

/** The parts of an incoming request the handler needs; node's IncomingMessage plus the body read as text. */
export interface WebhookRequest {
  /** Path and query as received, e.g. "/webhooks/twilio/status?x=1". */
  readonly url?: string | undefined;
  readonly method?: string | undefined;
  readonly headers: Readonly<Record<string, string | string[] | undefined>>;
  /** The raw application/x-www-form-urlencoded body. */
  readonly rawBody: string;
}

export interface TwilioWebhookOptions {
  readonly authToken: string;
  /**
   * The URL Twilio calls, exactly as given to it as StatusCallback (TWILIO_STATUS_CALLBACK_URL). Twilio signs
   * that URL, not what a proxy forwards to us, so its scheme, host and path are what is checked; the query
   * string comes from the request.
   */
  readonly publicUrl: string;
  /** Where accepted statuses and rejected requests are counted: the app's own, read by its metrics. */
  readonly counter: DeliveryStatusCounter;
}

export interface WebhookResponse {
  readonly status: number;
  readonly headers: Readonly<Record<string, string>>;
  readonly body: string;
}

/** Statuses after which Twilio sends no more updates for a message. */
export const FINAL_STATUSES = ["delivered", "undelivered", "failed", "read"] as const;
export type FinalStatus = (typeof FINAL_STATUSES)[number];

/** Counts of final delivery statuses, and of the error codes of failed ones (30007 carrier filtering, ...). */
export class DeliveryStatusCounter {
  readonly byStatus: Record<FinalStatus, number> = { delivered: 0, undelivered: 0, failed: 0, read: 0 };
  readonly byErrorCode: Record<string, number> = {};
  /** Requests refused for a missing or wrong signature. */
  rejected = 0;

  record(status: FinalStatus, errorCode: string | undefined): void {
    this.byStatus[status] += 1;
    if (errorCode) this.byErrorCode[errorCode] = (this.byErrorCode[errorCode] ?? 0) + 1;
  }

  snapshot(): {
    byStatus: Record<FinalStatus, number>;
    byErrorCode: Record<string, number>;
    rejected: number;
  } {
    return { byStatus: { ...this.byStatus }, byErrorCode: { ...this.byErrorCode }, rejected: this.rejected };
  }
}

const JSON_HEADERS = { "content-type": "application/json" };

/**
 * `POST /webhooks/twilio/status`: Twilio's message status callback. Anyone can post to a public URL, so
 * nothing is counted unless `X-Twilio-Signature` proves Twilio sent it with our auth token.
 */
export function handleTwilioStatusCallback(req: WebhookRequest, opts: TwilioWebhookOptions): WebhookResponse {
  const { counter } = opts;
  if (req.method !== undefined && req.method.toUpperCase() !== "POST") {
    return {
      status: 405,
      headers: { ...JSON_HEADERS, allow: "POST" },
      body: '{"error":"method not allowed"}',
    };
  }
  const header = req.headers["x-twilio-signature"];
  const signature = Array.isArray(header) ? header[0] : header;
  const params = Object.fromEntries(new URLSearchParams(req.rawBody));
  if (
    !signature ||
    !twilioSdk().validateRequest(opts.authToken, signature, signedUrl(opts.publicUrl, req.url), params)
  ) {
    counter.rejected += 1;
    return { status: 403, headers: JSON_HEADERS, body: '{"error":"invalid signature"}' };
  }
  const status = params.MessageStatus ?? params.SmsStatus;
  if (isFinal(status)) counter.record(status, params.ErrorCode);
  // Twilio only needs a 2xx; a body would be ignored.
  return { status: 204, headers: {}, body: "" };
}

function signedUrl(publicUrl: string, requestUrl: string | undefined): string {
  const base = publicUrl.replace(/[?#].*$/, "");
  const q = requestUrl?.indexOf("?") ?? -1;
  const query = requestUrl !== undefined && q >= 0 ? requestUrl.slice(q) : "";
  // A configured URL with its own query string was signed with it; the request carries the same one.
  return query !== "" ? `${base}${query}` : publicUrl;
}

function isFinal(status: string | undefined): status is FinalStatus {
  return status !== undefined && (FINAL_STATUSES as readonly string[]).includes(status);
}
