import { randomBytes } from "node:crypto";
import { createServer, type IncomingMessage, type ServerResponse } from "node:http";
import type { AddressInfo } from "node:net";

/**
 * A local stand-in for Twilio's Messages API, strict where Twilio is: basic auth with the account SID and
 * token, the account's Messages.json path, form fields, Twilio's error bodies and its magic test numbers
 * (https://www.twilio.com/docs/iam/test-credentials). The real SDK talks to it through TWILIO_API_BASE_URL.
 */

/** How the fake answers from now on. */
export type TwilioBehaviour =
  | { readonly kind: "normal" }
  /** Every request gets this 5xx (default 500) with Twilio's error body. */
  | { readonly kind: "down"; readonly status?: number }
  /** Requests are read and never answered. */
  | { readonly kind: "hang" }
  /** Requests are answered as in "normal", each after `ms` (a slow provider, to catch sends in flight). */
  | { readonly kind: "slow"; readonly ms: number }
  /** Every request gets this Twilio error, in the legacy body or the RFC 9457 one newer APIs use. */
  | {
      readonly kind: "error";
      readonly status: number;
      readonly code: number;
      readonly message: string;
      readonly rfc9457?: boolean;
    }
  /** The next `times` requests get 429 (code 20429), then it is back to normal. */
  | { readonly kind: "throttle"; readonly times: number };

export interface CapturedTwilioMessage {
  readonly sid: string;
  readonly to: string;
  readonly body: string;
  readonly from: string | undefined;
  readonly messagingServiceSid: string | undefined;
  readonly statusCallback: string | undefined;
}

export interface FakeTwilio {
  /** For TWILIO_API_BASE_URL. */
  readonly baseUrl: string;
  readonly accountSid: string;
  readonly authToken: string;
  /** Messages accepted, in order. */
  readonly messages: readonly CapturedTwilioMessage[];
  /** Every request that reached the fake, answered or not. */
  readonly requests: number;
  behave(behaviour: TwilioBehaviour): void;
  /** Trial-account mode: only these numbers can receive (others get 21608). `undefined` turns it off. */
  verifyOnly(numbers: readonly string[] | undefined): void;
  /** Resolves once `count` requests in total have arrived. */
  waitForRequests(count: number, timeoutMs?: number): Promise<void>;
  close(): Promise<void>;
}

// Twilio's magic numbers with test credentials: To -> error.
const MAGIC_TO: Readonly<Record<string, readonly [number, string]>> = {
  "+15005550001": [21211, "The 'To' number +15005550001 is not a valid phone number."],
  "+15005550002": [
    21612,
    "The 'To' phone number: +15005550002, is not currently reachable using the 'From' phone number via SMS.",
  ],
  "+15005550003": [
    21408,
    "Permission to send an SMS has not been enabled for the region indicated by the 'To' number: +15005550003.",
  ],
  "+15005550004": [21610, "Attempt to send to unsubscribed recipient"],
  "+15005550009": [21614, "'To' number is not a valid mobile number"],
};
const MAGIC_FROM: Readonly<Record<string, readonly [number, string]>> = {
  "+15005550001": [
    21212,
    "The 'From' number +15005550001 is not a valid phone number, shortcode, or alphanumeric sender ID.",
  ],
  "+15005550007": [
    21606,
    "The From phone number +15005550007 is not a valid, SMS-capable inbound phone number or short code for your account.",
  ],
  "+15005550008": [21611, "This 'From' number has exceeded the maximum number of queued messages"],
};

export async function startFakeTwilio(
  opts: { readonly accountSid?: string; readonly authToken?: string } = {},
): Promise<FakeTwilio> {
  const accountSid = opts.accountSid ?? `AC${randomBytes(16).toString("hex")}`;
  const authToken = opts.authToken ?? randomBytes(16).toString("hex");
  const messages: CapturedTwilioMessage[] = [];
  let behaviour: TwilioBehaviour = { kind: "normal" };
  let throttleLeft = 0;
  let verified: Set<string> | undefined;
  let requests = 0;
  const waiters = new Set<() => void>();

  const server = createServer((req, res) => {
    void handle(req, res).catch((err: unknown) => {
      if (!res.headersSent) send(res, 500, twilioError(500, 20500, `fake twilio crashed: ${String(err)}`));
    });
  });

  async function handle(req: IncomingMessage, res: ServerResponse): Promise<void> {
    const raw = await readBody(req);
    requests += 1;
    for (const wake of waiters) wake();

    if (behaviour.kind === "hang") return;
    if (behaviour.kind === "slow") {
      const { ms } = behaviour;
      await new Promise((resolve) => setTimeout(resolve, ms));
    }
    if (behaviour.kind === "down") {
      const status = behaviour.status ?? 500;
      return send(res, status, twilioError(status, 20500, "Internal Server Error"));
    }
    if (behaviour.kind === "throttle" && throttleLeft > 0) {
      throttleLeft -= 1;
      return send(res, 429, twilioError(429, 20429, "Too Many Requests"));
    }
    if (behaviour.kind === "error") {
      const { status, code, message } = behaviour;
      const problem = {
        type: `https://www.twilio.com/docs/errors/${code}`,
        title: message,
        status,
        code,
        detail: message,
      };
      return send(res, status, behaviour.rfc9457 ? problem : twilioError(status, code, message));
    }

    const expectedAuth = `Basic ${Buffer.from(`${accountSid}:${authToken}`).toString("base64")}`;
    if (req.headers.authorization !== expectedAuth) {
      return send(res, 401, twilioError(401, 20003, "Authenticate"));
    }
    const path = new URL(req.url ?? "/", "http://fake").pathname;
    if (req.method !== "POST" || path !== `/2010-04-01/Accounts/${accountSid}/Messages.json`) {
      return send(res, 404, twilioError(404, 20404, `The requested resource ${path} was not found`));
    }
    if (!String(req.headers["content-type"]).startsWith("application/x-www-form-urlencoded")) {
      return send(res, 400, twilioError(400, 21602, "Message body is required."));
    }
    const form = new URLSearchParams(raw);
    const to = form.get("To");
    const body = form.get("Body");
    const from = form.get("From") ?? undefined;
    const messagingServiceSid = form.get("MessagingServiceSid") ?? undefined;
    if (!to) return send(res, 400, twilioError(400, 21604, "A 'To' phone number is required."));
    if (!body) return send(res, 400, twilioError(400, 21602, "Message body is required."));
    if (!from && !messagingServiceSid) {
      return send(res, 400, twilioError(400, 21603, "A 'From' phone number is required."));
    }
    if (messagingServiceSid !== undefined && !/^MG[0-9a-f]{32}$/i.test(messagingServiceSid)) {
      return send(
        res,
        400,
        twilioError(400, 21701, `The Messaging Service Sid ${messagingServiceSid} is invalid.`),
      );
    }
    const fromError = from ? MAGIC_FROM[from] : undefined;
    if (fromError) return send(res, 400, twilioError(400, ...fromError));
    const toError =
      MAGIC_TO[to] ??
      (/^\+[1-9]\d{6,14}$/.test(to)
        ? undefined
        : ([21211, `The 'To' number ${to} is not a valid phone number.`] as const));
    if (toError) return send(res, 400, twilioError(400, ...toError));
    if (verified && !verified.has(to)) {
      return send(
        res,
        400,
        twilioError(
          400,
          21608,
          `The number ${to} is unverified. Trial accounts cannot send messages to unverified numbers; verify ${to} at twilio.com/user/account/phone-numbers/verified, or purchase a Twilio number to send messages to unverified numbers`,
        ),
      );
    }

    const sid = `SM${randomBytes(16).toString("hex")}`;
    const statusCallback = form.get("StatusCallback") ?? undefined;
    messages.push({ sid, to, body, from, messagingServiceSid, statusCallback });
    const now = new Date().toUTCString().replace("GMT", "+0000");
    send(res, 201, {
      account_sid: accountSid,
      api_version: "2010-04-01",
      body,
      date_created: now,
      date_sent: null,
      date_updated: now,
      direction: "outbound-api",
      error_code: null,
      error_message: null,
      from: from ?? null,
      messaging_service_sid: messagingServiceSid ?? null,
      num_media: "0",
      num_segments: "1",
      price: null,
      price_unit: "USD",
      sid,
      // With only a Messaging Service, Twilio accepts first and picks the sender later.
      status: from ? "queued" : "accepted",
      subresource_uris: { media: `/2010-04-01/Accounts/${accountSid}/Messages/${sid}/Media.json` },
      to,
      uri: `/2010-04-01/Accounts/${accountSid}/Messages/${sid}.json`,
    });
  }

  await new Promise<void>((resolve) => server.listen(0, "127.0.0.1", resolve));
  const { port } = server.address() as AddressInfo;

  return {
    baseUrl: `http://127.0.0.1:${port}`,
    accountSid,
    authToken,
    messages,
    get requests() {
      return requests;
    },
    behave(next) {
      behaviour = next;
      throttleLeft = next.kind === "throttle" ? next.times : 0;
    },
    verifyOnly(numbers) {
      verified = numbers ? new Set(numbers) : undefined;
    },
    waitForRequests(count, timeoutMs = 10_000) {
      return waitUntil(
        () => requests >= count,
        waiters,
        timeoutMs,
        () => `${count} requests (got ${requests})`,
      );
    },
    async close() {
      server.closeAllConnections();
      await new Promise<void>((resolve) => server.close(() => resolve()));
    },
  };
}

function twilioError(status: number, code: number, message: string) {
  return { code, message, more_info: `https://www.twilio.com/docs/errors/${code}`, status };
}

function send(res: ServerResponse, status: number, body: unknown): void {
  res.writeHead(status, {
    "content-type": "application/json",
    "twilio-request-id": `RQ${randomBytes(16).toString("hex")}`,
  });
  res.end(JSON.stringify(body));
}

async function readBody(req: IncomingMessage): Promise<string> {
  const chunks: Buffer[] = [];
  for await (const chunk of req) chunks.push(chunk as Buffer);
  return Buffer.concat(chunks).toString("utf8");
}

function waitUntil(
  done: () => boolean,
  waiters: Set<() => void>,
  timeoutMs: number,
  what: () => string,
): Promise<void> {
  if (done()) return Promise.resolve();
  return new Promise<void>((resolve, reject) => {
    const timer = setTimeout(() => {
      waiters.delete(wake);
      reject(new Error(`fake twilio: timed out waiting for ${what()}`));
    }, timeoutMs);
    const wake = () => {
      if (!done()) return;
      clearTimeout(timer);
      waiters.delete(wake);
      resolve();
    };
    waiters.add(wake);
  });
}
