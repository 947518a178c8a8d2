import { generateKeyPairSync } from "node:crypto";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { type RunningApp, startApp } from "./support/app.js";
import { describeWithRedis } from "./support/redis.js";

describe("the development login page", () => {
  let s: RunningApp;
  beforeAll(async () => {
    s = await startApp();
  });
  afterAll(() => s?.close());

  it("serves the page at / and its Connect-Web bundle at /app.js", async () => {
    const page = await fetch(`${s.baseUrl}/`);
    expect(page.status).toBe(200);
    expect(page.headers.get("content-type")).toMatch(/^text\/html/);
    expect(await page.text()).toMatch(/<script type="module" src="app.js">/);

    const js = await fetch(`${s.baseUrl}/app.js`);
    expect(js.status).toBe(200);
    expect(js.headers.get("content-type")).toMatch(/^text\/javascript/);
    const code = await js.text();
    // Bundled (no bare imports left for the browser to fail on) and speaking Connect (connect-web's header).
    expect(/^import /m.test(code), "bare import in bundle").toBe(false);
    expect(code.includes("Connect-Protocol-Version"), "Connect-Web in bundle").toBe(true);
  });

  it("serves an icon at /favicon.ico (browsers ask for it) and /favicon.svg (the page links it)", async () => {
    for (const path of ["/favicon.ico", "/favicon.svg"]) {
      const res = await fetch(`${s.baseUrl}${path}`);
      expect(res.status, path).toBe(200);
      expect(res.headers.get("content-type"), path).toBe("image/svg+xml");
      expect(await res.text(), path).toMatch(/^<svg /);
    }
  });
});

describeWithRedis("in production", (redis) => {
  let s: RunningApp;
  beforeAll(async () => {
    s = await startApp({
      NODE_ENV: "production",
      REDIS_URL: redis.url,
      APP_NAME: "Otp Auth Test",
      SMS_PROVIDER: "twilio", // replaced by the test's capture provider
      TWILIO_ACCOUNT_SID: "AC00000000000000000000000000000000",
      TWILIO_AUTH_TOKEN: "0123456789abcdef0123456789abcdef",
      TWILIO_PHONE_NUMBER: "+15005550006",
      OTP_SECRET: "s".repeat(32),
      JWT_PRIVATE_KEY: String(
        generateKeyPairSync("ed25519").privateKey.export({ type: "pkcs8", format: "pem" }),
      ),
    });
  });
  afterAll(() => s?.close());

  it("serves no page and allows no cross-origin caller by default", async () => {
    expect((await fetch(`${s.baseUrl}/`)).status).toBe(404);
    expect((await fetch(`${s.baseUrl}/app.js`)).status).toBe(404);
    const pre = await fetch(`${s.baseUrl}/auth.v1.AuthService/SendOtp`, {
      method: "OPTIONS",
      headers: { origin: "http://localhost:5173", "access-control-request-method": "POST" },
    });
    expect(pre.headers.get("access-control-allow-origin")).toBeNull();
  });
});
