import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { StoreUnavailableError } from "../src/login/failures.js";
import { classifyRedisError } from "../src/redis/errors.js";
import { type RunningApp, startApp } from "./support/app.js";
import { uniquePhone } from "./support/capture-sms.js";
import { describeWithRedis } from "./support/redis.js";

describe("Redis errors are classified, not guessed", () => {
  it("connection loss, timeouts and failover replies are outages; anything else is not", () => {
    const outage = [
      new Error("Command timed out"),
      new Error("Stream isn't writeable and enableOfflineQueue options is false"),
      new Error("Connection is closed."),
      new Error("Redis connection is not ready"),
      Object.assign(new Error("read ECONNRESET"), { code: "ECONNRESET" }),
      new Error("LOADING Redis is loading the dataset in memory"),
      new Error("CLUSTERDOWN The cluster is down"),
      new Error("READONLY You can't write against a read only replica."),
    ];
    for (const err of outage)
      expect(classifyRedisError(err), err.message).toBeInstanceOf(StoreUnavailableError);
    const bugs = [
      new Error("WRONGTYPE Operation against a key holding the wrong kind of value"),
      new Error("ERR Error running script: attempt to compare nil with number"),
      new Error("unexpected rotate reply: 42"),
      new TypeError("Cannot read properties of undefined"),
    ];
    for (const err of bugs) expect(classifyRedisError(err), err.message).toBe(err);
  });
});

describeWithRedis("with Redis: a malformed record is a 500 with an error id, not a 503", (redis) => {
  let s: RunningApp;
  beforeAll(async () => {
    s = await startApp({ REDIS_URL: redis.url });
  });
  afterAll(() => s?.close());

  const post = async (path: string, body: unknown) => {
    const res = await fetch(`${s.baseUrl}/api/v1/auth/${path}`, {
      method: "POST",
      headers: { "content-type": "application/json" },
      body: JSON.stringify(body),
    });
    return { status: res.status, body: (await res.json()) as Record<string, unknown> };
  };

  it("a user record with a non-numeric id", async () => {
    const phone = uniquePhone();
    const db = redis.client();
    await db.hset(`user:{${phone}}`, "id", "abc", "phone", phone);
    expect((await post("send-otp", { phone })).status).toBe(200);
    const r = await post("verify-otp", { phone, otp: s.sms.lastCode(phone) });
    expect(r).toMatchObject({ status: 500, body: { code: "internal", reason: "INTERNAL" } });
    expect(r.body.metadata).toMatchObject({ error_id: expect.stringMatching(/^[0-9a-f-]{36}$/) });
    await db.del(`user:{${phone}}`);
  });

  it("a code key of the wrong type (WRONGTYPE from the script)", async () => {
    const phone = uniquePhone();
    const db = redis.client();
    await db.set(`otp:{${phone}}`, "not a hash", "EX", 60);
    const r = await post("verify-otp", { phone, otp: "123456" });
    expect(r).toMatchObject({ status: 500, body: { reason: "INTERNAL" } });
    await db.del(`otp:{${phone}}`);
  });
});
