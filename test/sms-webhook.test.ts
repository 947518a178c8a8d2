import twilio from "twilio";
import { describe, expect, it } from "vitest";
import {
  DeliveryStatusCounter,
  handleTwilioStatusCallback,
  type WebhookRequest,
} from "../src/sms/twilio/twilio-status-webhook.js";

const AUTH_TOKEN = "12345678901234567890123456789012";
const PUBLIC_URL = "https://auth.example.com/webhooks/twilio/status";

function params(status: string, extra: Record<string, string> = {}): Record<string, string> {
  return {
    AccountSid: `AC${"0".repeat(32)}`,
    ApiVersion: "2010-04-01",
    From: "+15017122661",
    MessageSid: `SM${"1".repeat(32)}`,
    MessageStatus: status,
    SmsSid: `SM${"1".repeat(32)}`,
    SmsStatus: status,
    To: "+919876543210",
    ...extra,
  };
}

/** A callback as Twilio sends it: form body, signed over the URL it was given plus the sorted params. */
function signed(
  body: Record<string, string>,
  opts: { token?: string; url?: string; path?: string } = {},
): WebhookRequest {
  const signature = twilio.getExpectedTwilioSignature(opts.token ?? AUTH_TOKEN, opts.url ?? PUBLIC_URL, body);
  return {
    method: "POST",
    url: opts.path ?? "/webhooks/twilio/status",
    headers: { "content-type": "application/x-www-form-urlencoded", "x-twilio-signature": signature },
    rawBody: new URLSearchParams(body).toString(),
  };
}

function handle(req: WebhookRequest, counter: DeliveryStatusCounter, publicUrl = PUBLIC_URL) {
  return handleTwilioStatusCallback(req, { authToken: AUTH_TOKEN, publicUrl, counter });
}

describe("POST /webhooks/twilio/status", () => {
  it("accepts a validly signed callback and counts its final status", () => {
    const counter = new DeliveryStatusCounter();
    const res = handle(signed(params("delivered")), counter);
    expect(res.status).toBe(204);
    expect(counter.snapshot()).toEqual({
      byStatus: { delivered: 1, undelivered: 0, failed: 0, read: 0 },
      byErrorCode: {},
      rejected: 0,
    });
  });

  it("counts failed and undelivered messages by their error code", () => {
    const counter = new DeliveryStatusCounter();
    handle(signed(params("undelivered", { ErrorCode: "30007" })), counter);
    handle(signed(params("failed", { ErrorCode: "30008" })), counter);
    handle(signed(params("undelivered", { ErrorCode: "30007" })), counter);
    expect(counter.snapshot().byStatus).toMatchObject({ undelivered: 2, failed: 1 });
    expect(counter.snapshot().byErrorCode).toEqual({ "30007": 2, "30008": 1 });
  });

  it("acknowledges intermediate statuses without counting them", () => {
    const counter = new DeliveryStatusCounter();
    for (const status of ["queued", "sending", "sent", "accepted"]) {
      expect(handle(signed(params(status)), counter).status).toBe(204);
    }
    expect(Object.values(counter.snapshot().byStatus)).toEqual([0, 0, 0, 0]);
  });

  it("validates against the configured public URL, whatever path the proxy forwarded", () => {
    const counter = new DeliveryStatusCounter();
    const req = { ...signed(params("delivered")), url: "/internal/twilio-status" };
    expect(handle(req, counter).status).toBe(204);
  });

  it("includes the query string of the request in the signed URL", () => {
    const counter = new DeliveryStatusCounter();
    const req = signed(params("delivered"), {
      url: `${PUBLIC_URL}?tenant=in`,
      path: "/webhooks/twilio/status?tenant=in",
    });
    expect(handle(req, counter).status).toBe(204);
    const tampered = { ...req, url: "/webhooks/twilio/status?tenant=us" };
    expect(handle(tampered, counter).status).toBe(403);
  });

  it("refuses a missing signature", () => {
    const counter = new DeliveryStatusCounter();
    const req = signed(params("delivered"));
    const res = handle({ ...req, headers: { "content-type": "application/x-www-form-urlencoded" } }, counter);
    expect(res.status).toBe(403);
    expect(counter.snapshot()).toMatchObject({ byStatus: { delivered: 0 }, rejected: 1 });
  });

  it("refuses a signature made with another token", () => {
    const counter = new DeliveryStatusCounter();
    const res = handle(signed(params("delivered"), { token: "x".repeat(32) }), counter);
    expect(res.status).toBe(403);
    expect(counter.snapshot().byStatus.delivered).toBe(0);
  });

  it("refuses a body changed after signing", () => {
    const counter = new DeliveryStatusCounter();
    const req = signed(params("undelivered", { ErrorCode: "30007" }));
    const forged = { ...req, rawBody: new URLSearchParams(params("delivered")).toString() };
    expect(handle(forged, counter).status).toBe(403);
    expect(counter.snapshot().byStatus.delivered).toBe(0);
  });

  it("refuses a signature for another URL", () => {
    const counter = new DeliveryStatusCounter();
    const req = signed(params("delivered"), { url: "https://evil.example.com/webhooks/twilio/status" });
    expect(handle(req, counter).status).toBe(403);
  });

  it("answers 405 to anything but POST", () => {
    const counter = new DeliveryStatusCounter();
    const res = handle({ ...signed(params("delivered")), method: "GET" }, counter);
    expect(res.status).toBe(405);
    expect(res.headers.allow).toBe("POST");
  });
});
