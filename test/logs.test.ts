import { generateKeyPairSync } from "node:crypto";
import type { AddressInfo } from "node:net";
import { createClient } from "@connectrpc/connect";
import { createConnectTransport, createGrpcTransport } from "@connectrpc/connect-node";
import { afterAll, beforeAll, expect, it } from "vitest";
import { AuthService } from "../gen/auth/v1/auth_pb.js";
import { type App, buildApp } from "../src/app.js";
import { loadConfig } from "../src/config.js";
import { createLogger, maskPhone } from "../src/log.js";
import { SmsError } from "../src/login/failures.js";
import { CaptureSms, uniquePhone } from "./support/capture-sms.js";
import { describeWithRedis } from "./support/redis.js";

/**
 * Production configuration at the most verbose level, a full login on two protocols plus every failure the
 * log talks about: not one line may hold a code, a token or a whole phone number.
 */
describeWithRedis(
  "logs in production say nothing secret",
  (redis) => {
    let app: App;
    let baseUrl: string;
    const sms = new CaptureSms();
    const lines: string[] = [];

    beforeAll(async () => {
      const { privateKey } = generateKeyPairSync("ed25519");
      const config = loadConfig({
        NODE_ENV: "production",
        REDIS_URL: redis.url,
        APP_NAME: "Otp Auth Test",
        SMS_PROVIDER: "twilio",
        TWILIO_ACCOUNT_SID: "AC00000000000000000000000000000000",
        TWILIO_AUTH_TOKEN: "secret-auth-token-never-logged",
        TWILIO_PHONE_NUMBER: "+15005550006",
        OTP_SECRET: "x".repeat(40),
        JWT_PRIVATE_KEY: privateKey.export({ format: "pem", type: "pkcs8" }).toString(),
        LOG_LEVEL: "trace",
      });
      const log = createLogger({
        production: config.production,
        level: config.logLevel,
        destination: { write: (line: string) => void lines.push(line) },
      });
      app = await buildApp(config, log, { sms });
      const addr: AddressInfo = await app.server.listen(0, "127.0.0.1");
      baseUrl = `http://127.0.0.1:${addr.port}`;
    });
    afterAll(async () => {
      await app?.close();
    });

    const post = (path: string, body: unknown, requestId?: string) =>
      fetch(`${baseUrl}${path}`, {
        method: "POST",
        headers: { "content-type": "application/json", ...(requestId ? { "x-request-id": requestId } : {}) },
        body: JSON.stringify(body),
      });

    it("a full login over REST and gRPC, with failures, leaks no code, token or phone", async () => {
      const secrets: string[] = [];
      const phones: string[] = [];

      // REST: send, a wrong code, the right code, refresh, logout, reuse of the spent refresh token.
      const phone = uniquePhone();
      phones.push(phone);
      expect((await post("/api/v1/auth/send-otp", { phone })).status).toBe(200);
      const code = sms.lastCode(phone);
      const wrong = code === "000000" ? "111111" : "000000";
      secrets.push(code, wrong);
      expect((await post("/api/v1/auth/verify-otp", { phone, otp: wrong })).status).toBe(401);
      const verified = await post("/api/v1/auth/verify-otp", { phone, otp: code });
      expect(verified.status).toBe(200);
      const tokens = (await verified.json()) as { access_token: string; refresh_token: string };
      secrets.push(tokens.access_token, tokens.refresh_token);
      const refreshed = await post("/api/v1/auth/refresh", { refresh_token: tokens.refresh_token });
      const next = (await refreshed.json()) as { access_token: string; refresh_token: string };
      secrets.push(next.access_token, next.refresh_token);
      expect((await post("/api/v1/auth/logout", { refresh_token: next.refresh_token })).status).toBe(200);
      expect((await post("/api/v1/auth/refresh", { refresh_token: tokens.refresh_token })).status).toBe(401);

      // gRPC: a second user logs in.
      const auth = createClient(AuthService, createGrpcTransport({ baseUrl }));
      const phone2 = uniquePhone();
      phones.push(phone2);
      await auth.sendOtp({ phone: phone2 }, { headers: { "x-request-id": "grpc-send-1" } });
      secrets.push(sms.lastCode(phone2));
      const s2 = await auth.verifyOtp({ phone: phone2, otp: sms.lastCode(phone2) });
      secrets.push(s2.accessToken, s2.refreshToken);

      // Connect JSON: a send (connect-node's pipeline, not the gRPC fast path).
      const connect = createClient(AuthService, createConnectTransport({ baseUrl, httpVersion: "1.1" }));
      const phone4 = uniquePhone();
      phones.push(phone4);
      await connect.sendOtp({ phone: phone4 }, { headers: { "x-request-id": "connect-send-1" } });
      secrets.push(sms.lastCode(phone4));

      // The SMS provider fails, in its own words and in a way nobody expected.
      const phone3 = uniquePhone();
      phones.push(phone3);
      sms.failWith = new SmsError("provider_down", "could not send", "twilio", "HTTP 503 from the provider");
      expect((await post("/api/v1/auth/send-otp", { phone: phone3 }, "sms-down-1")).status).toBe(503);
      sms.failWith = new Error("socket hang up");
      expect((await post("/api/v1/auth/send-otp", { phone: phone3 })).status).toBe(503);
      sms.failWith = undefined;

      // The store goes away mid-login.
      await redis.stop();
      try {
        expect((await post("/api/v1/auth/verify-otp", { phone, otp: code }, "store-down-1")).status).toBe(
          503,
        );
      } finally {
        await redis.start();
      }

      const log = lines.join("");
      expect(lines.length).toBeGreaterThan(5);
      for (const secret of secrets) expect(log).not.toContain(secret);
      for (const p of phones) {
        expect(log).not.toContain(p);
        expect(log).not.toContain(p.slice(1));
      }
      // What it does say: masked phones, and the request id on the lines written while serving a request.
      expect(log).toContain(maskPhone(phone));
      const parsed = lines.map((l) => JSON.parse(l) as { msg: string; reqId?: string; level: number });
      expect(parsed.find((l) => l.msg === "sms send failed")?.reqId).toBe("sms-down-1");
      expect(parsed.find((l) => l.msg.startsWith("store unavailable"))?.reqId).toBe("store-down-1");
      expect(parsed.filter((l) => l.msg === "otp sent").every((l) => typeof l.reqId === "string")).toBe(true);
      // A gRPC call's line too (the fast path), and a Connect call's (connect-node's pipeline).
      expect(
        (parsed as { msg: string; reqId?: string; phone?: string }[]).find(
          (l) => l.msg === "otp sent" && l.phone === maskPhone(phone2),
        )?.reqId,
      ).toBe("grpc-send-1");
      expect(
        (parsed as { msg: string; reqId?: string; phone?: string }[]).find(
          (l) => l.msg === "otp sent" && l.phone === maskPhone(phone4),
        )?.reqId,
      ).toBe("connect-send-1");
    }, 60_000);
  },
  { outage: true },
);
