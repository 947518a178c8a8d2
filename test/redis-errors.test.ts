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
      // A cluster between states: failover, resharding, every node away, a redirection storm.
      new Error("CLUSTERDOWN The cluster is down"),
      new Error("TRYAGAIN Multiple keys request during rehashing of slot"),
      new Error("MOVED 3999 127.0.0.1:6381"),
      // A replica promoted by a failover, whose script cache is empty.
      new Error("NOSCRIPT No matching script. Please use EVAL."),
      new Error("Too many Cluster redirections. Last error: MOVED 3999 127.0.0.1:6381"),
      new Error("Failed to refresh slots cache."),
      new Error("Cluster isn't ready and enableOfflineQueue options is false"),
      // An auto-pipelined batch whose slots moved to other nodes before it left (a slot-map refresh).
      new Error("All keys in the pipeline should belong to the same slots allocation group"),
      Object.assign(new Error("Failed to refresh slots cache."), { name: "ClusterAllFailedError" }),
    ];
    for (const err of outage)
      expect(classifyRedisError(err), err.message).toBeInstanceOf(StoreUnavailableError);
    const bugs = [
      new Error("WRONGTYPE Operation against a key holding the wrong kind of value"),
      new Error("ERR Error running script: attempt to compare nil with number"),
      new Error("unexpected rotate reply: 42"),
      new TypeError("Cannot read properties of undefined"),
      // A script given keys of several slots is our bug, not the cluster's state.
      new Error("CROSSSLOT Keys in request don't hash to the same slot"),
      new Error("All the keys in a pipeline command should belong to the same slot"),
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
