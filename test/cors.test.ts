import { generateKeyPairSync } from "node:crypto";
import { cors } from "@connectrpc/connect";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { ConfigError, loadConfig } from "../src/config.js";
import { type RunningApp, startApp } from "./support/app.js";
import { uniquePhone } from "./support/capture-sms.js";

const SEND = "/auth.v1.AuthService/SendOtp";
const preflight = (base: string, path: string, origin: string) =>
  fetch(`${base}${path}`, {
    method: "OPTIONS",
    headers: {
      origin,
      "access-control-request-method": "POST",
      "access-control-request-headers": "content-type,connect-protocol-version",
    },
  });
const post = (base: string, path: string, origin: string, body: unknown) =>
  fetch(`${base}${path}`, {
    method: "POST",
    headers: { origin, "content-type": "application/json" },
    body: JSON.stringify(body),
  });
const corsHeaders = (res: Response) =>
  [...res.headers.keys()].filter((k) => k.startsWith("access-control-")).sort();

describe("CORS with CORS_ORIGINS set", () => {
  const allowed = "https://app.example.com";
  let s: RunningApp;
  beforeAll(async () => {
    s = await startApp({ CORS_ORIGINS: `${allowed}, http://localhost:5173` });
  });
  afterAll(() => s?.close());

  it.each([SEND, "/api/v1/auth/send-otp"])(
    "answers the preflight for %s with Connect's lists",
    async (path) => {
      const res = await preflight(s.baseUrl, path, allowed);
      expect(res.status).toBe(204);
      expect(res.headers.get("access-control-allow-origin")).toBe(allowed);
      const methods = res.headers.get("access-control-allow-methods")?.split(", ");
      expect(methods).toEqual(expect.arrayContaining([...cors.allowedMethods]));
      const headers = res.headers.get("access-control-allow-headers")?.toLowerCase().split(", ");
      expect(headers).toEqual(
        expect.arrayContaining([...cors.allowedHeaders.map((h) => h.toLowerCase()), "authorization"]),
      );
      expect(res.headers.get("vary")).toMatch(/origin/i);
    },
  );

  it("adds allow-origin and Connect's exposed headers to the real response", async () => {
    const res = await post(s.baseUrl, SEND, allowed, { phone: uniquePhone() });
    expect(res.status).toBe(200);
    expect(res.headers.get("access-control-allow-origin")).toBe(allowed);
    const exposed = res.headers.get("access-control-expose-headers")?.toLowerCase().split(", ");
    expect(exposed).toEqual(
      expect.arrayContaining([...cors.exposedHeaders.map((h) => h.toLowerCase()), "x-error-reason"]),
    );
  });

  it("gives an origin not in the list no CORS headers at all, preflight or not", async () => {
    for (const origin of [
      "https://evil.example",
      "https://app.example.com.evil.example",
      "http://127.0.0.1:9",
    ]) {
      const pre = await preflight(s.baseUrl, SEND, origin);
      expect(corsHeaders(pre), origin).toEqual([]);
      const res = await post(s.baseUrl, SEND, origin, { phone: uniquePhone() });
      expect(corsHeaders(res), origin).toEqual([]);
    }
  });

  it("leaves non-browser paths and same-origin requests alone", async () => {
    const jwks = await fetch(`${s.baseUrl}/.well-known/jwks.json`, { headers: { origin: allowed } });
    expect(corsHeaders(jwks)).toEqual([]);
    const plain = await fetch(`${s.baseUrl}${SEND}`, {
      method: "POST",
      headers: { "content-type": "application/json" },
      body: JSON.stringify({ phone: uniquePhone() }),
    });
    expect(plain.status).toBe(200);
    expect(corsHeaders(plain)).toEqual([]);
  });
});

describe("CORS defaults", () => {
  it("development allows loopback origins (local front-end servers) and nothing else", async () => {
    const s = await startApp();
    try {
      const ok = await preflight(s.baseUrl, SEND, "http://localhost:5173");
      expect(ok.headers.get("access-control-allow-origin")).toBe("http://localhost:5173");
      const no = await preflight(s.baseUrl, SEND, "https://app.example.com");
      expect(corsHeaders(no)).toEqual([]);
    } finally {
      await s.close();
    }
  });

  it("production allows no origin unless listed", () => {
    const prod = {
      NODE_ENV: "production",
      REDIS_URL: "redis://127.0.0.1:6379",
      APP_NAME: "Otp Auth Test",
      SMS_PROVIDER: "twilio",
      TWILIO_ACCOUNT_SID: "AC00000000000000000000000000000000",
      TWILIO_AUTH_TOKEN: "0123456789abcdef0123456789abcdef",
      TWILIO_PHONE_NUMBER: "+15005550006",
      OTP_SECRET: "x".repeat(32),
      JWT_PRIVATE_KEY: String(
        generateKeyPairSync("ed25519").privateKey.export({ type: "pkcs8", format: "pem" }),
      ),
    };
    expect(loadConfig(prod).cors).toEqual({ origins: [], loopback: false });
    expect(loadConfig({ NODE_ENV: "test" }).cors).toEqual({ origins: [], loopback: true });
    expect(loadConfig({ CORS_ORIGINS: "https://a.example, https://b.example:8443" }).cors).toEqual({
      origins: ["https://a.example", "https://b.example:8443"],
      loopback: false,
    });
  });

  it("refuses entries that are not origins, naming CORS_ORIGINS", () => {
    for (const bad of [
      "*",
      "app.example.com",
      "https://app.example.com/",
      "https://a.example/path",
      "ftp://a.example",
    ]) {
      expect(() => loadConfig({ CORS_ORIGINS: bad }), bad).toThrow(ConfigError);
      expect(() => loadConfig({ CORS_ORIGINS: bad }), bad).toThrow(/CORS_ORIGINS/);
    }
  });
});
