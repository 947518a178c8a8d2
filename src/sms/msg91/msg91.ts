import { SmsError, type SmsErrorKind } from "../../login/failures.js";
import type { SmsMessage, SmsReceipt, SmsSender } from "../../login/ports.js";

export const MSG91_DEFAULT_API_BASE_URL = "https://control.msg91.com";

export interface Msg91SenderOptions {
  readonly authKey: string;
  /** The MSG91 template id of a DLT-approved template; its text is what the user receives. */
  readonly templateId: string;
  /** The template variable that carries the code (`##otp##` in the template -> "otp"). */
  readonly codeVariable: string;
  readonly apiBaseUrl: string;
  readonly timeoutMs: number;
}

const PROVIDER = "msg91";
const TRY_LATER = "We could not send the SMS right now. Please try again in a few minutes.";
const INVALID = "This phone number is not valid. Check it and try again.";

interface Msg91Answer {
  readonly type?: unknown;
  readonly message?: unknown;
  readonly request_id?: unknown;
  readonly code?: unknown;
}

/**
 * Sends through MSG91's v5 Flow API (`POST /api/v5/flow/`), which fills a DLT-approved template with our
 * variables. In India the operator checks the text against the registered template, so the message text
 * rendered from SMS_TEMPLATE is not sent here; only the code is, and the template holds the rest.
 *
 * Request: header `authkey` (never in the URL, where proxies log it), JSON body
 * `{ template_id, short_url: "0", recipients: [{ mobiles: "919876543210", otp: "123456" }] }`.
 * Answer: `{ type: "success", message: <request id> }`, or `{ type: "error", message }` with HTTP 200 or 4xx.
 */
export class Msg91SmsSender implements SmsSender {
  readonly name = PROVIDER;
  readonly #url: string;

  constructor(private readonly opts: Msg91SenderOptions) {
    this.#url = `${opts.apiBaseUrl.replace(/\/+$/, "")}/api/v5/flow/`;
  }

  async send(message: SmsMessage): Promise<SmsReceipt> {
    if (!/^\+[1-9]\d{6,14}$/.test(message.to)) {
      throw new SmsError("invalid_number", INVALID, PROVIDER, "the number is not E.164");
    }
    const body = {
      template_id: this.opts.templateId,
      // Off: a shortened link in an OTP looks like phishing and changes the registered text.
      short_url: "0",
      recipients: [{ mobiles: message.to.slice(1), [this.opts.codeVariable]: message.code }],
    };
    let response: Response;
    let text: string;
    try {
      response = await fetch(this.#url, {
        method: "POST",
        headers: {
          authkey: this.opts.authKey,
          "content-type": "application/json",
          accept: "application/json",
        },
        body: JSON.stringify(body),
        signal: AbortSignal.timeout(this.opts.timeoutMs),
      });
      text = await response.text();
    } catch (err) {
      const name = err instanceof Error ? err.name : "";
      const detail =
        name === "TimeoutError" || name === "AbortError"
          ? "no answer from MSG91 within SMS_TIMEOUT_MS"
          : `could not reach MSG91: ${networkCause(err)}`;
      throw new SmsError("provider_down", TRY_LATER, PROVIDER, detail);
    }
    const answer = parse(text);
    if (response.ok && answer?.type === "success") {
      const id = typeof answer.message === "string" ? answer.message : String(answer.request_id ?? "");
      return { provider: PROVIDER, id };
    }
    throw classifyMsg91Failure(response.status, answer);
  }
}

function parse(text: string): Msg91Answer | undefined {
  try {
    const value: unknown = JSON.parse(text);
    return typeof value === "object" && value !== null ? (value as Msg91Answer) : undefined;
  } catch {
    return undefined;
  }
}

function networkCause(err: unknown): string {
  // fetch wraps the socket error: TypeError("fetch failed") with the useful part in `cause`.
  const cause = err instanceof Error ? err.cause : undefined;
  if (cause instanceof Error) {
    const code = (cause as { code?: unknown }).code;
    return typeof code === "string" ? code : cause.message;
  }
  return err instanceof Error ? err.message : String(err);
}

/**
 * MSG91 has no stable numeric error codes for the Flow API, so its message text decides, after the HTTP
 * status. An unrecognised refusal counts as ours (`our_config`): it fails over, and the operator reads it.
 */
export function classifyMsg91Failure(status: number, answer: Msg91Answer | undefined): SmsError {
  const said = typeof answer?.message === "string" ? answer.message : "";
  const detail = (hint: string) =>
    `MSG91 HTTP ${status}${said ? ` "${said.slice(0, 200)}"` : ""}${answer?.code ? ` code ${String(answer.code)}` : ""}: ${hint}`;
  const fail = (kind: SmsErrorKind, hint: string, user = TRY_LATER) =>
    new SmsError(kind, user, PROVIDER, detail(hint));

  if (status === 429 || status >= 500) return fail("provider_down", "MSG91 is down or throttling us");
  if (status === 418 || /\bip\b|whitelist/i.test(said)) {
    return fail(
      "our_config",
      "this server's IP is not whitelisted for MSG91_AUTH_KEY (MSG91 panel > Authkey > IP security)",
    );
  }
  if (status === 401 || status === 403 || /auth/i.test(said)) {
    return fail("our_config", "MSG91 rejected the auth key: check MSG91_AUTH_KEY");
  }
  if (/template|flow|dlt/i.test(said)) {
    return fail(
      "our_config",
      "check MSG91_TEMPLATE_ID is a DLT-approved template in the MSG91 panel, and has the variable named by MSG91_OTP_VARIABLE (default ##otp##)",
    );
  }
  if (/balance|credit|insufficient/i.test(said))
    return fail("our_config", "the MSG91 account is out of balance");
  if (/mobile|number/i.test(said)) return fail("invalid_number", "MSG91 refused the number", INVALID);
  if (answer === undefined && status >= 200 && status < 300) {
    return fail("provider_down", "MSG91 answered something that is not JSON");
  }
  return fail("our_config", "MSG91 refused the message");
}
