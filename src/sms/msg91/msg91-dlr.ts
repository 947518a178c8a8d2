/**
 * MSG91's delivery report (its "push DLR" webhook): JSON, as the body itself or URL-encoded in a `data`
 * field, an array of `{ requestId, report: [{ number, status, desc, date }] }` (or one such object). The
 * request id is the one the Flow API answered, which is our message id. Status "1" is delivered, "2" failed;
 * the others (9 NDNC, 16 and 25 rejected, 17 blocked, ...) are undelivered, and their code is kept.
 */
export interface Msg91Report {
  readonly messageId: string;
  readonly status: "delivered" | "failed" | "undelivered";
  readonly errorCode: string;
}

export function parseMsg91Dlr(contentType: string, rawBody: string): Msg91Report[] {
  let json: unknown;
  try {
    const text = /urlencoded/i.test(contentType) ? (new URLSearchParams(rawBody).get("data") ?? "") : rawBody;
    json = JSON.parse(text);
  } catch {
    return [];
  }
  const items = Array.isArray(json) ? json : [json];
  const reports: Msg91Report[] = [];
  for (const item of items) {
    if (typeof item !== "object" || item === null) continue;
    const { requestId, report } = item as { requestId?: unknown; report?: unknown };
    if (typeof requestId !== "string" || requestId === "") continue;
    const [last] = Array.isArray(report) ? report.slice(-1) : [item];
    const code = String((last as { status?: unknown } | undefined)?.status ?? "");
    const desc = String((last as { desc?: unknown } | undefined)?.desc ?? "");
    if (code === "1") reports.push({ messageId: requestId, status: "delivered", errorCode: "" });
    else if (code === "2") reports.push({ messageId: requestId, status: "failed", errorCode: desc || code });
    else if (code !== "") reports.push({ messageId: requestId, status: "undelivered", errorCode: code });
  }
  return reports;
}
