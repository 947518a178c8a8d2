import { createHash } from "node:crypto";
import { ConnectError, createClient, type Transport } from "@connectrpc/connect";
import { createConnectTransport, createGrpcTransport } from "@connectrpc/connect-node";
import type { Redis } from "ioredis";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { AuthService } from "../gen/auth/v1/auth_pb.js";
import { tokenKey } from "../src/tokens/redis-refresh-store.js";
import { type RunningApp, startApp } from "./support/app.js";
import { uniquePhone } from "./support/capture-sms.js";
import { redisReason, startTestRedis, type TestRedis } from "./support/redis.js";

interface Pair {
  access_token: string;
  refresh_token: string;
}
interface Refusal {
  code: string;
  reason: string;
}

const sha256 = (token: string) => createHash("sha256").update(token).digest("base64url");
const userIdOf = (token: string) => Number(token.split(".")[0]);
/** Where the store keeps a token: by its hash, never the token. */
const keyOf = (token: string) => tokenKey(userIdOf(token), sha256(token));

const skip = redisReason();

describe.skipIf(skip)("the refresh reuse grace, over every protocol (Redis-backed)", () => {
  let redis: TestRedis;
  let probe: Redis;
  /** The default grace (10 s). */
  let s: RunningApp;
  /** A one-second grace, to be waited out. */
  let short: RunningApp;
  /** The grace off: the behaviour before it. */
  let off: RunningApp;
  beforeAll(async () => {
    redis = await startTestRedis();
    probe = redis.client();
    [s, short, off] = await Promise.all([
      startApp({ REDIS_URL: redis.url }),
      startApp({ REDIS_URL: redis.url, REFRESH_REUSE_GRACE_SECONDS: "1" }),
      startApp({ REDIS_URL: redis.url, REFRESH_REUSE_GRACE_SECONDS: "0" }),
    ]);
  });
  afterAll(async () => {
    await Promise.all([s?.close(), short?.close(), off?.close()]);
    await redis?.close();
  });

  const post = (app: RunningApp, path: string, body: unknown) =>
    fetch(`${app.baseUrl}${path}`, {
      method: "POST",
      headers: { "content-type": "application/json" },
      body: JSON.stringify(body),
    });
  const restLogin = async (app: RunningApp): Promise<Pair> => {
    const phone = uniquePhone();
    expect((await post(app, "/api/v1/auth/send-otp", { phone })).status).toBe(200);
    const res = await post(app, "/api/v1/auth/verify-otp", { phone, otp: app.sms.lastCode(phone) });
    expect(res.status).toBe(200);
    return (await res.json()) as Pair;
  };
  const restRefresh = async (app: RunningApp, token: string) => {
    const res = await post(app, "/api/v1/auth/refresh", { refresh_token: token });
    return { status: res.status, body: (await res.json()) as Pair & Refusal };
  };
  /** Resolves once Redis's clock, which times the grace, is `graceSeconds` past the token's rotation. */
  const waitPastGrace = async (spent: string, graceSeconds: number) => {
    const spentAt = Number(await probe.hget(keyOf(spent), "spentAt"));
    expect(Number.isSafeInteger(spentAt)).toBe(true);
    await waitFor(async () => {
      const [sec, micros] = await probe.time();
      return Number(sec) * 1000 + Math.floor(Number(micros) / 1000) >= spentAt + graceSeconds * 1000;
    });
  };

  describe("REST /api/v1/auth/refresh", () => {
    it("two refreshes of one token within the grace both succeed with the same next token", async () => {
      const session = await restLogin(s);
      const [a, b] = await Promise.all([
        restRefresh(s, session.refresh_token),
        restRefresh(s, session.refresh_token),
      ]);
      expect([a.status, b.status]).toEqual([200, 200]);
      expect(a.body.refresh_token).toBe(b.body.refresh_token);
      const retry = await restRefresh(s, session.refresh_token);
      expect(retry.status).toBe(200);
      expect(retry.body.refresh_token).toBe(a.body.refresh_token);
      // One live token for both tabs, and the session goes on from it.
      expect((await restRefresh(s, a.body.refresh_token)).status).toBe(200);
    });

    it("a use after the grace revokes the family", async () => {
      const session = await restLogin(short);
      const next = await restRefresh(short, session.refresh_token);
      expect(next.status).toBe(200);
      await waitPastGrace(session.refresh_token, 1);
      const late = await restRefresh(short, session.refresh_token);
      expect(late).toMatchObject({ status: 401, body: { reason: "REFRESH_TOKEN_REUSED" } });
      expect(await restRefresh(short, next.body.refresh_token)).toMatchObject({
        status: 401,
        body: { reason: "REFRESH_TOKEN_INVALID" },
      });
    });

    it("logout answers success for unknown, spent and revoked tokens", async () => {
      const session = await restLogin(s);
      const next = await restRefresh(s, session.refresh_token);
      const logout = (token: string) => post(s, "/api/v1/auth/logout", { refresh_token: token });
      for (const token of [next.body.refresh_token, next.body.refresh_token, session.refresh_token, "nope"]) {
        const res = await logout(token);
        expect(res.status).toBe(200);
        expect(await res.json()).toEqual({ message: "logged out" });
      }
      expect((await restRefresh(s, next.body.refresh_token)).status).toBe(401);
    });
  });

  const transports: Record<string, (app: RunningApp) => Transport> = {
    "Connect JSON over HTTP/1.1": (app) =>
      createConnectTransport({ baseUrl: app.baseUrl, httpVersion: "1.1" }),
    "gRPC over HTTP/2": (app) => createGrpcTransport({ baseUrl: app.baseUrl }),
  };
  for (const [name, transport] of Object.entries(transports)) {
    describe(name, () => {
      const login = async (app: RunningApp) => {
        const client = createClient(AuthService, transport(app));
        const phone = uniquePhone();
        await client.sendOtp({ phone });
        return { client, session: await client.verifyOtp({ phone, otp: app.sms.lastCode(phone) }) };
      };
      const reason = (p: Promise<unknown>) =>
        p.then(
          () => "ok",
          (e: unknown) => ConnectError.from(e).metadata.get("x-error-reason"),
        );

      it("two refreshes of one token within the grace both succeed with the same next token", async () => {
        const { client, session } = await login(s);
        const refreshToken = session.refreshToken;
        const [a, b] = await Promise.all([
          client.refreshToken({ refreshToken }),
          client.refreshToken({ refreshToken }),
        ]);
        expect(a.refreshToken).toBe(b.refreshToken);
        expect(a.refreshToken).not.toBe(refreshToken);
        expect((await client.refreshToken({ refreshToken: a.refreshToken })).refreshToken).not.toBe(
          a.refreshToken,
        );
      });

      it("a use after the grace revokes the family", async () => {
        const { client, session } = await login(short);
        const next = await client.refreshToken({ refreshToken: session.refreshToken });
        await waitPastGrace(session.refreshToken, 1);
        expect(await reason(client.refreshToken({ refreshToken: session.refreshToken }))).toBe(
          "REFRESH_TOKEN_REUSED",
        );
        expect(await reason(client.refreshToken({ refreshToken: next.refreshToken }))).toBe(
          "REFRESH_TOKEN_INVALID",
        );
      });

      it("logout answers success for unknown, spent and revoked tokens", async () => {
        const { client, session } = await login(s);
        const next = await client.refreshToken({ refreshToken: session.refreshToken });
        for (const refreshToken of [next.refreshToken, next.refreshToken, session.refreshToken, "nope"]) {
          expect(await reason(client.logout({ refreshToken }))).toBe("ok");
        }
      });
    });
  }

  describe("a refresh whose answer is lost (Redis hung past the 800 ms command timeout)", () => {
    /** Refreshes while Redis is frozen: the script waits in Redis's socket and runs once it thaws. */
    const refreshWhileHung = async (app: RunningApp, token: string) => {
      redis.pause();
      try {
        return await restRefresh(app, token);
      } finally {
        redis.resume();
      }
    };

    it("answers 503, and the retry gets the successor the lost rotation stored: never logged out", async (ctx) => {
      if (!redis.owned) return ctx.skip();
      const session = await restLogin(s);
      const lost = await refreshWhileHung(s, session.refresh_token);
      expect(lost).toMatchObject({ status: 503, body: { reason: "STORE_UNAVAILABLE" } });
      // The 503 was a lie of omission: the rotation did happen.
      await waitFor(async () => (await probe.hget(keyOf(session.refresh_token), "spent")) === "1");
      const successorHash = await probe.hget(keyOf(session.refresh_token), "next");

      const retry = await restRefresh(s, session.refresh_token);
      expect(retry.status).toBe(200);
      expect(sha256(retry.body.refresh_token)).toBe(successorHash);
      const onwards = await restRefresh(s, retry.body.refresh_token);
      expect(onwards.status).toBe(200);
      expect((await restRefresh(s, onwards.body.refresh_token)).status).toBe(200);
    });

    it("with the grace off, the same retry logs the user out (the defect the grace fixes)", async (ctx) => {
      if (!redis.owned) return ctx.skip();
      const session = await restLogin(off);
      expect((await refreshWhileHung(off, session.refresh_token)).status).toBe(503);
      await waitFor(async () => (await probe.hget(keyOf(session.refresh_token), "spent")) === "1");
      expect(await restRefresh(off, session.refresh_token)).toMatchObject({
        status: 401,
        body: { reason: "REFRESH_TOKEN_REUSED" },
      });
    });
  });
});

/** Polls until `check` holds, failing after a deadline rather than sleeping a fixed time and hoping. */
async function waitFor(check: () => Promise<boolean>, deadlineMs = 10_000): Promise<void> {
  const deadline = Date.now() + deadlineMs;
  while (!(await check())) {
    if (Date.now() > deadline) throw new Error(`condition not met within ${deadlineMs} ms`);
    await new Promise((resolve) => setTimeout(resolve, 20));
  }
}
