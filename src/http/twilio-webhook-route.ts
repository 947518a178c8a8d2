import type { SeenCallbacks } from "../sms/twilio/seen-callbacks.js";
import {
  type DeliveryStatusCounter,
  handleTwilioStatusCallback,
} from "../sms/twilio/twilio-status-webhook.js";
import type { Req, Res } from "./json.js";
import { HttpError, readBody, sendError } from "./json.js";
import { requestIdFrom } from "./request-id.js";

const MAX_BODY_BYTES = 64 * 1024;

export interface TwilioWebhookSettings {
  readonly authToken: string;
  /** TWILIO_STATUS_CALLBACK_URL: the URL Twilio signs. */
  readonly publicUrl: string;
  /** The app's own counter, which its metrics read. */
  readonly counter: DeliveryStatusCounter;
  /** Which final statuses were counted already, so a retried or replayed callback is not counted twice. */
  readonly seen: SeenCallbacks;
  /** Where a signed final status goes the first time: the message's verification record. */
  readonly onReceipt?:
    | ((
        receipt: { messageId: string; status: string; errorCode: string },
        /** The webhook request's id, for the log lines written while keeping the receipt. */
        requestId?: string,
      ) => Promise<unknown>)
    | undefined;
}

/** `POST /webhooks/twilio/status`: reads the form body as text and lets the SMS layer check and count it. */
export async function serveTwilioStatus(req: Req, res: Res, settings: TwilioWebhookSettings): Promise<void> {
  let body: string;
  try {
    body = await readBody(req, MAX_BODY_BYTES);
  } catch (err) {
    if (!(err instanceof HttpError)) throw err;
    sendError(res, err);
    return;
  }
  const onReceipt = settings.onReceipt;
  const requestId = requestIdFrom(req);
  const answer = await handleTwilioStatusCallback(
    {
      url: req.url,
      method: req.method,
      headers: req.headers,
      rawBody: body,
    },
    onReceipt ? { ...settings, onReceipt: (receipt) => onReceipt(receipt, requestId) } : settings,
  );
  res.writeHead(answer.status, answer.headers);
  res.end(answer.body);
}
