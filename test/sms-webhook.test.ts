import type { Cluster, Redis } from "ioredis";
import twilio from "twilio";
import { describe, expect, it } from "vitest";
import {
  MemorySeenCallbacks,
  RedisSeenCallbacks,
  SEEN_TTL_SECONDS,
  type SeenCallbacks,
} from "../src/sms/twilio/seen-callbacks.js";
import {
  DeliveryStatusCounter,
  handleTwilioStatusCallback,
  type WebhookRequest,
} from "../src/sms/twilio/twilio-status-webhook.js";
import { describeWithRedis } from "./support/redis.js";
import { describeWithRedisCluster } from "./support/redis-cluster.js";

const AUTH_TOKEN = "12345678901234567890123456789012";
const PUBLIC_URL = "https://auth.example.com/webhooks/twilio/status";

let messages = 0;
/** A message of its own for each callback unless `MessageSid` says otherwise: repeats are tested on purpose. */
function params(status: string, extra: Record<string, string> = {}): Record<string, string> {
  const sid = `SM${(++messages).toString(16).padStart(32, "0")}`;
  return {
    AccountSid: `AC${"0".repeat(32)}`,
    ApiVersion: "2010-04-01",
    From: "+15017122661",
    MessageSid: sid,
    MessageStatus: status,
    SmsSid: sid,
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

function handle(
  req: WebhookRequest,
  counter: DeliveryStatusCounter,
  seen: SeenCallbacks = new MemorySeenCallbacks(),
) {
  return handleTwilioStatusCallback(req, { authToken: AUTH_TOKEN, publicUrl: PUBLIC_URL, counter, seen });
}

describe("POST /webhooks/twilio/status", () => {
  it("accepts a validly signed callback and counts its final status", async () => {
    const counter = new DeliveryStatusCounter();
    const res = await handle(signed(params("delivered")), counter);
    expect(res.status).toBe(204);
    expect(counter.snapshot()).toEqual({
      byStatus: { delivered: 1, undelivered: 0, failed: 0, read: 0 },
      byErrorCode: {},
      rejected: 0,
      duplicates: 0,
    });
  });

  it("counts failed and undelivered messages by their error code", async () => {
    const counter = new DeliveryStatusCounter();
    await handle(signed(params("undelivered", { ErrorCode: "30007" })), counter);
    await handle(signed(params("failed", { ErrorCode: "30008" })), counter);
    await handle(signed(params("undelivered", { ErrorCode: "30007" })), counter);
    expect(counter.snapshot().byStatus).toMatchObject({ undelivered: 2, failed: 1 });
    expect(counter.snapshot().byErrorCode).toEqual({ "30007": 2, "30008": 1 });
  });

  it("acknowledges intermediate statuses without counting them", async () => {
    const counter = new DeliveryStatusCounter();
    for (const status of ["queued", "sending", "sent", "accepted"]) {
      expect((await handle(signed(params(status)), counter)).status).toBe(204);
    }
    expect(Object.values(counter.snapshot().byStatus)).toEqual([0, 0, 0, 0]);
  });

  it("validates against the configured public URL, whatever path the proxy forwarded", async () => {
    const counter = new DeliveryStatusCounter();
    const req = { ...signed(params("delivered")), url: "/internal/twilio-status" };
    expect((await handle(req, counter)).status).toBe(204);
  });

  it("includes the query string of the request in the signed URL", async () => {
    const counter = new DeliveryStatusCounter();
    const req = signed(params("delivered"), {
      url: `${PUBLIC_URL}?tenant=in`,
      path: "/webhooks/twilio/status?tenant=in",
    });
    expect((await handle(req, counter)).status).toBe(204);
    const tampered = { ...req, url: "/webhooks/twilio/status?tenant=us" };
    expect((await handle(tampered, counter)).status).toBe(403);
  });

  it("refuses a missing signature", async () => {
    const counter = new DeliveryStatusCounter();
    const req = signed(params("delivered"));
    const res = await handle(
      { ...req, headers: { "content-type": "application/x-www-form-urlencoded" } },
      counter,
    );
    expect(res.status).toBe(403);
    expect(counter.snapshot()).toMatchObject({ byStatus: { delivered: 0 }, rejected: 1 });
  });

  it("refuses a signature made with another token", async () => {
    const counter = new DeliveryStatusCounter();
    const res = await handle(signed(params("delivered"), { token: "x".repeat(32) }), counter);
    expect(res.status).toBe(403);
    expect(counter.snapshot().byStatus.delivered).toBe(0);
  });

  it("refuses a body changed after signing", async () => {
    const counter = new DeliveryStatusCounter();
    const req = signed(params("undelivered", { ErrorCode: "30007" }));
    const forged = { ...req, rawBody: new URLSearchParams(params("delivered")).toString() };
    expect((await handle(forged, counter)).status).toBe(403);
    expect(counter.snapshot().byStatus.delivered).toBe(0);
  });

  it("refuses a signature for another URL", async () => {
    const counter = new DeliveryStatusCounter();
    const req = signed(params("delivered"), { url: "https://evil.example.com/webhooks/twilio/status" });
    expect((await handle(req, counter)).status).toBe(403);
  });

  it("answers 405 to anything but POST", async () => {
    const counter = new DeliveryStatusCounter();
    const res = await handle({ ...signed(params("delivered")), method: "GET" }, counter);
    expect(res.status).toBe(405);
    expect(res.headers.allow).toBe("POST");
  });
});

/** The same signed callback posted again (Twilio retrying, or anyone who saw it) is acknowledged, counted once. */
function replayTests(seenOf: () => SeenCallbacks) {
  it("counts a replayed callback once, and still answers it 2xx so Twilio stops retrying", async () => {
    const counter = new DeliveryStatusCounter();
    const seen = seenOf();
    const req = signed(params("undelivered", { ErrorCode: "30007" }));
    for (let i = 0; i < 3; i++) expect((await handle(req, counter, seen)).status).toBe(204);
    expect(counter.snapshot()).toMatchObject({
      byStatus: { undelivered: 1 },
      byErrorCode: { "30007": 1 },
      duplicates: 2,
    });
  });

  it("counts each status of a message once, and the same status of another message again", async () => {
    const counter = new DeliveryStatusCounter();
    const seen = seenOf();
    const first = params("delivered");
    const sid = first.MessageSid ?? "";
    await handle(signed(first), counter, seen);
    await handle(signed(params("read", { MessageSid: sid, SmsSid: sid })), counter, seen);
    await handle(signed(params("read", { MessageSid: sid, SmsSid: sid })), counter, seen);
    await handle(signed(params("delivered")), counter, seen);
    expect(counter.snapshot()).toMatchObject({ byStatus: { delivered: 2, read: 1 }, duplicates: 1 });
  });

  it("hands each final status to onReceipt once; one it could not keep is forgotten, so the retry is kept", async () => {
    const counter = new DeliveryStatusCounter();
    const seen = seenOf();
    const kept: string[] = [];
    let failing = true;
    const onReceipt = async (r: { messageId: string; status: string; errorCode: string }) => {
      if (failing) throw new Error("store unavailable");
      kept.push(`${r.messageId}:${r.status}:${r.errorCode}`);
    };
    const body = params("undelivered", { ErrorCode: "30007" });
    const req = signed(body);
    const opts = { authToken: AUTH_TOKEN, publicUrl: PUBLIC_URL, counter, seen, onReceipt };
    await expect(handleTwilioStatusCallback(req, opts)).rejects.toThrow("store unavailable");
    expect(counter.snapshot()).toMatchObject({ byStatus: { undelivered: 0 }, duplicates: 0 });
    failing = false;
    for (let i = 0; i < 2; i++) expect((await handleTwilioStatusCallback(req, opts)).status).toBe(204);
    expect(kept).toEqual([`${body.MessageSid}:undelivered:30007`]);
    expect(counter.snapshot()).toMatchObject({ byStatus: { undelivered: 1 }, duplicates: 1 });
  });
}

describe("replayed status callbacks, remembered per instance", () => {
  replayTests(() => new MemorySeenCallbacks());

  it("forgets a pair after a day, and never holds more than its capacity", async () => {
    let now = 0;
    const seen = new MemorySeenCallbacks(3, 1000, () => now);
    expect(await seen.firstTime("SMa", "delivered")).toBe(true);
    expect(await seen.firstTime("SMa", "delivered")).toBe(false);
    now = 1000;
    expect(await seen.firstTime("SMa", "delivered")).toBe(true);
    for (const sid of ["SMb", "SMc", "SMd", "SMe"]) await seen.firstTime(sid, "delivered");
    expect(seen.size).toBe(3);
    // The oldest went first; the newest are still known.
    expect(await seen.firstTime("SMe", "delivered")).toBe(false);
  });

  it("does not count a final status without a message sid, which could not be told from its repeats", async () => {
    const counter = new DeliveryStatusCounter();
    const { MessageSid: _m, SmsSid: _s, ...anonymous } = params("delivered");
    expect((await handle(signed(anonymous), counter)).status).toBe(204);
    expect(counter.snapshot().byStatus.delivered).toBe(0);
  });

  it("answers 503 and counts nothing when it cannot tell whether the status was counted", async () => {
    const counter = new DeliveryStatusCounter();
    const broken: SeenCallbacks = { firstTime: () => Promise.reject(new Error("Connection is closed.")) };
    expect((await handle(signed(params("delivered")), counter, broken)).status).toBe(503);
    expect(counter.snapshot()).toMatchObject({ byStatus: { delivered: 0 }, duplicates: 0 });
  });
});

describeWithRedis("replayed status callbacks, remembered in Redis", (redis) => {
  let client: Redis | undefined;
  const seenOf = () => {
    client ??= redis.client();
    return new RedisSeenCallbacks(client);
  };
  replayTests(seenOf);

  it("is one hash-tagged key per message and status, expiring after a day", async () => {
    const seen = seenOf();
    expect(await seen.firstTime("SMfeed", "delivered")).toBe(true);
    expect(await new RedisSeenCallbacks(redis.client()).firstTime("SMfeed", "delivered")).toBe(false);
    expect(await redis.keys("twstatus:{SMfeed}:*")).toEqual(["twstatus:{SMfeed}:delivered"]);
    const ttl = await redis.client().ttl("twstatus:{SMfeed}:delivered");
    expect(ttl).toBeGreaterThan(SEEN_TTL_SECONDS - 60);
    expect(ttl).toBeLessThanOrEqual(SEEN_TTL_SECONDS);
  });
});

describeWithRedisCluster("replayed status callbacks, remembered in Redis", (cluster) => {
  let client: Cluster | undefined;
  const seenOf = () => {
    client ??= cluster.client();
    return new RedisSeenCallbacks(client);
  };
  replayTests(seenOf);

  it("is seen once across instances, one key in the message's slot, expiring after a day", async () => {
    expect(await seenOf().firstTime("SMc1a5", "delivered")).toBe(true);
    expect(await new RedisSeenCallbacks(cluster.client()).firstTime("SMc1a5", "delivered")).toBe(false);
    expect(await cluster.keys("twstatus:{SMc1a5}:*")).toEqual(["twstatus:{SMc1a5}:delivered"]);
    const ttl = await cluster.client().ttl("twstatus:{SMc1a5}:delivered");
    expect(ttl).toBeGreaterThan(SEEN_TTL_SECONDS - 60);
    expect(ttl).toBeLessThanOrEqual(SEEN_TTL_SECONDS);
  });
});
