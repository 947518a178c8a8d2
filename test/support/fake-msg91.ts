import { randomBytes } from "node:crypto";
import { createServer, type IncomingMessage, type ServerResponse } from "node:http";
import type { AddressInfo } from "node:net";

/**
 * A local stand-in for MSG91's v5 Flow API (`POST /api/v5/flow/`), strict where MSG91 is: the `authkey`
 * header, a known DLT template id, Indian mobiles as 91XXXXXXXXXX, and its habit of answering HTTP 200 with
 * `{"type":"error"}`. Our client talks to it through MSG91_API_BASE_URL.
 */

export type Msg91Behaviour =
  | { readonly kind: "normal" }
  /** Every request gets this 5xx (default 503). */
  | { readonly kind: "down"; readonly status?: number }
  /** Requests are read and never answered. */
  | { readonly kind: "hang" }
  /** Every request gets `{"type":"error","message":message}` with this status (default 200). */
  | { readonly kind: "error"; readonly message: string; readonly status?: number };

export interface CapturedMsg91Message {
  readonly requestId: string;
  readonly templateId: string;
  readonly mobiles: string;
  /** The recipient's template variables, e.g. { otp: "123456" }. */
  readonly variables: Readonly<Record<string, string>>;
  readonly shortUrl: unknown;
}

export interface FakeMsg91 {
  /** For MSG91_API_BASE_URL. */
  readonly baseUrl: string;
  readonly authKey: string;
  readonly templateId: string;
  readonly messages: readonly CapturedMsg91Message[];
  /** Every request that reached the fake, answered or not. */
  readonly requests: number;
  /** Every request's URL (path and query), to prove the key never travels in one. */
  readonly urls: readonly string[];
  behave(behaviour: Msg91Behaviour): void;
  waitForRequests(count: number, timeoutMs?: number): Promise<void>;
  close(): Promise<void>;
}

export async function startFakeMsg91(
  opts: { readonly authKey?: string; readonly templateId?: string; readonly codeVariable?: string } = {},
): Promise<FakeMsg91> {
  const authKey = opts.authKey ?? `${randomBytes(12).toString("hex")}A1`;
  const templateId = opts.templateId ?? randomBytes(12).toString("hex");
  const codeVariable = opts.codeVariable ?? "otp";
  const messages: CapturedMsg91Message[] = [];
  const urls: string[] = [];
  let behaviour: Msg91Behaviour = { kind: "normal" };
  let requests = 0;
  const waiters = new Set<() => void>();

  const server = createServer((req, res) => {
    void handle(req, res).catch((err: unknown) => {
      if (!res.headersSent) send(res, 500, { type: "error", message: `fake msg91 crashed: ${String(err)}` });
    });
  });

  async function handle(req: IncomingMessage, res: ServerResponse): Promise<void> {
    const raw = await readBody(req);
    requests += 1;
    urls.push(req.url ?? "");
    for (const wake of waiters) wake();

    if (behaviour.kind === "hang") return;
    if (behaviour.kind === "down") {
      const status = behaviour.status ?? 503;
      res.writeHead(status, { "content-type": "text/html" });
      res.end("<html><body><h1>503 Service Temporarily Unavailable</h1></body></html>");
      return;
    }
    if (behaviour.kind === "error") {
      return send(res, behaviour.status ?? 200, { type: "error", message: behaviour.message });
    }

    const url = new URL(req.url ?? "/", "http://fake");
    if (url.searchParams.has("authkey")) {
      return send(res, 400, { type: "error", message: "authkey must be sent as a header, not in the URL" });
    }
    if (req.headers.authkey !== authKey) {
      return send(res, 401, { type: "error", message: "Authentication failure", code: "401" });
    }
    if (req.method !== "POST" || !/^\/api\/v5\/flow\/?$/.test(url.pathname)) {
      return send(res, 404, { type: "error", message: `no route ${req.method} ${url.pathname}` });
    }
    if (!String(req.headers["content-type"]).startsWith("application/json")) {
      return send(res, 400, { type: "error", message: "content-type must be application/json" });
    }
    let body: { template_id?: unknown; short_url?: unknown; recipients?: unknown };
    try {
      body = JSON.parse(raw) as typeof body;
    } catch {
      return send(res, 400, { type: "error", message: "invalid JSON" });
    }
    if (body.template_id !== templateId) {
      return send(res, 200, { type: "error", message: "Template ID is not valid or not approved" });
    }
    const recipients = body.recipients;
    if (!Array.isArray(recipients) || recipients.length !== 1) {
      return send(res, 200, { type: "error", message: "recipients is required" });
    }
    const recipient = recipients[0] as Record<string, unknown>;
    const mobiles = recipient.mobiles;
    if (typeof mobiles !== "string" || !/^91[6-9]\d{9}$/.test(mobiles)) {
      return send(res, 200, { type: "error", message: "Mobile number is invalid" });
    }
    const variables: Record<string, string> = {};
    for (const [k, v] of Object.entries(recipient)) if (k !== "mobiles") variables[k] = String(v);
    if (variables[codeVariable] === undefined) {
      return send(res, 200, { type: "error", message: `Template variable ${codeVariable} is missing` });
    }
    const requestId = randomBytes(12).toString("hex");
    messages.push({ requestId, templateId, mobiles, variables, shortUrl: body.short_url });
    send(res, 200, { type: "success", message: requestId });
  }

  await new Promise<void>((resolve) => server.listen(0, "127.0.0.1", resolve));
  const { port } = server.address() as AddressInfo;

  return {
    baseUrl: `http://127.0.0.1:${port}`,
    authKey,
    templateId,
    messages,
    urls,
    get requests() {
      return requests;
    },
    behave(next) {
      behaviour = next;
    },
    waitForRequests(count, timeoutMs = 10_000) {
      if (requests >= count) return Promise.resolve();
      return new Promise<void>((resolve, reject) => {
        const timer = setTimeout(() => {
          waiters.delete(wake);
          reject(new Error(`fake msg91: timed out waiting for ${count} requests (got ${requests})`));
        }, timeoutMs);
        const wake = () => {
          if (requests < count) return;
          clearTimeout(timer);
          waiters.delete(wake);
          resolve();
        };
        waiters.add(wake);
      });
    },
    async close() {
      server.closeAllConnections();
      await new Promise<void>((resolve) => server.close(() => resolve()));
    },
  };
}

function send(res: ServerResponse, status: number, body: unknown): void {
  res.writeHead(status, { "content-type": "application/json" });
  res.end(JSON.stringify(body));
}

async function readBody(req: IncomingMessage): Promise<string> {
  const chunks: Buffer[] = [];
  for await (const chunk of req) chunks.push(chunk as Buffer);
  return Buffer.concat(chunks).toString("utf8");
}
