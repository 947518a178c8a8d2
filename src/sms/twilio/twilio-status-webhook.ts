import { twilioSdk } from "./sdk.js";
import type { SeenCallbacks } from "./seen-callbacks.js";

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
  /** Which final statuses were already counted: Redis (cluster-wide) when the app has it, else this instance's. */
  readonly seen: SeenCallbacks;
  /**
   * Where a signed final status goes the first time it is seen: the message's verification record. Awaited
   * before the answer; when it throws, the status is forgotten by `seen` and the error travels on (a 5xx).
   */
  readonly onReceipt?:
    | ((receipt: { messageId: string; status: string; errorCode: string }) => Promise<unknown>)
    | undefined;
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
  /** Signed final statuses acknowledged but not counted: already counted for that message (retries, replays). */
  duplicates = 0;

  record(status: FinalStatus, errorCode: string | undefined): void {
    this.byStatus[status] += 1;
    if (errorCode) this.byErrorCode[errorCode] = (this.byErrorCode[errorCode] ?? 0) + 1;
  }

  snapshot(): {
    byStatus: Record<FinalStatus, number>;
    byErrorCode: Record<string, number>;
    rejected: number;
    duplicates: number;
  } {
    return {
      byStatus: { ...this.byStatus },
      byErrorCode: { ...this.byErrorCode },
      rejected: this.rejected,
      duplicates: this.duplicates,
    };
  }
}

const JSON_HEADERS = { "content-type": "application/json" };

// Twilio's are two letters and 32 hex digits; anything longer would only grow the remembered keys.
const MESSAGE_SID = /^[A-Za-z0-9]{1,64}$/;

/**
 * `POST /webhooks/twilio/status`: Twilio's message status callback. Anyone can post to a public URL, so
 * nothing is counted unless `X-Twilio-Signature` proves Twilio sent it with our auth token. The signature
 * covers no timestamp or nonce, so a signed request stays valid forever: each (MessageSid, final status) is
 * counted once, and a repeat is acknowledged (so Twilio stops retrying) without being counted.
 */
export async function handleTwilioStatusCallback(
  req: WebhookRequest,
  opts: TwilioWebhookOptions,
): Promise<WebhookResponse> {
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
  const sid = params.MessageSid ?? params.SmsSid;
  // Without a sid a repeat cannot be told apart, so such a callback (Twilio always sends one) is not counted.
  if (isFinal(status) && sid !== undefined && MESSAGE_SID.test(sid)) {
    let first: boolean;
    try {
      first = await opts.seen.firstTime(sid, status);
    } catch {
      // Unknown whether it was counted: not counting now, and a 5xx invites Twilio to try again later.
      return { status: 503, headers: JSON_HEADERS, body: '{"error":"try again later"}' };
    }
    if (first && opts.onReceipt) {
      // Recorded before the answer: a 2xx tells Twilio not to retry, so it must mean "kept". A receipt that
      // could not be kept is forgotten again, so Twilio's retry is a first time, not a duplicate.
      try {
        await opts.onReceipt({ messageId: sid, status, errorCode: params.ErrorCode ?? "" });
      } catch (err) {
        await opts.seen.forget?.(sid, status).catch(() => {});
        throw err;
      }
    }
    if (first) counter.record(status, params.ErrorCode);
    else counter.duplicates += 1;
  }
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
