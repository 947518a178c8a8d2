import { createHash, timingSafeEqual } from "node:crypto";
import { parseMsg91Dlr } from "../sms/msg91/msg91-dlr.js";
import { HttpError, type Req, type Res, readBody, sendError } from "./json.js";
import { requestIdFrom } from "./request-id.js";

export const MSG91_DLR_PREFIX = "/webhooks/msg91/dlr/";
const MAX_BODY_BYTES = 64 * 1024;

export interface Msg91DlrSettings {
  /** MSG91_DLR_SECRET: the path segment that proves MSG91 (or whoever we gave the URL) is calling. */
  readonly secret: string;
  /** `requestId`: the webhook request's id, for the log lines written while keeping the receipt. */
  readonly onReceipt: (
    receipt: { messageId: string; status: string; errorCode: string },
    requestId?: string,
  ) => Promise<unknown>;
}

/**
 * `POST /webhooks/msg91/dlr/{secret}`: MSG91's delivery reports. The secret is compared in constant time (as
 * digests, so its length leaks nothing); a wrong one is 404, like any path that does not exist, and reads
 * nothing.
 */
export async function serveMsg91Dlr(
  req: Req,
  res: Res,
  path: string,
  settings: Msg91DlrSettings,
): Promise<void> {
  const presented = createHash("sha256").update(path.slice(MSG91_DLR_PREFIX.length)).digest();
  const expected = createHash("sha256").update(settings.secret).digest();
  if (!timingSafeEqual(presented, expected)) {
    sendError(res, new HttpError(404, "NOT_FOUND", `no route for ${req.method} ${MSG91_DLR_PREFIX}…`));
    return;
  }
  if (req.method !== "POST") {
    sendError(res, new HttpError(405, "MALFORMED_REQUEST", "use POST", { allow: "POST" }));
    return;
  }
  let body: string;
  try {
    body = await readBody(req, MAX_BODY_BYTES);
  } catch (err) {
    if (!(err instanceof HttpError)) throw err;
    sendError(res, err);
    return;
  }
  const reports = parseMsg91Dlr(String(req.headers["content-type"] ?? ""), body);
  const requestId = requestIdFrom(req);
  for (const report of reports) await settings.onReceipt(report, requestId);
  res.writeHead(200, { "content-type": "application/json" });
  res.end(JSON.stringify({ received: reports.length }));
}
