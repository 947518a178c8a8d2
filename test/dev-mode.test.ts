import { Code, ConnectError, createClient } from "@connectrpc/connect";
import { createGrpcTransport } from "@connectrpc/connect-node";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { AuthService } from "../gen/auth/v1/auth_pb.js";
import { clientResolver, TrustedProxies } from "../src/http/client-ip.js";
import type { Req } from "../src/http/json.js";
import { GENEROUS_LIMITS, type RunningApp, startApp } from "./support/app.js";
import { uniquePhone } from "./support/capture-sms.js";
import { type FakeMsg91, startFakeMsg91 } from "./support/fake-msg91.js";

/** `npm start`'s own limits: the test support's generous ones taken away. */
const DEFAULT_LIMITS = Object.fromEntries(Object.keys(GENEROUS_LIMITS).map((k) => [k, undefined]));

const post = (base: string, path: string, body: unknown, headers: Record<string, string> = {}) =>
  fetch(`${base}${path}`, {
    method: "POST",
    headers: { "content-type": "application/json", ...headers },
    body: JSON.stringify(body),
  });

async function reasonOf(res: Response): Promise<string> {
  return ((await res.json()) as { reason?: string }).reason ?? `HTTP ${res.status}`;
}

describe("development mode: people on this machine are not rate limited", () => {
  let s: RunningApp;
  beforeAll(async () => {
    // The development provider itself (not the test's capturing one), with npm start's default limits.
    s = await startApp({ ...DEFAULT_LIMITS, NODE_ENV: undefined }, { configuredSms: true });
  });
  afterAll(() => s?.close());

  it("a loopback caller resends to one phone past the cooldown, the per-phone and the per-IP limits", async () => {
    const phone = uniquePhone();
    for (let i = 0; i < 8; i++) {
      const res = await post(s.baseUrl, "/api/v1/auth/send-otp", { phone });
      expect(res.status, `send ${i + 1}: ${res.status === 200 ? "" : await reasonOf(res)}`).toBe(200);
    }
    // gRPC (HTTP/2) resolves the client the same way.
    const client = createClient(AuthService, createGrpcTransport({ baseUrl: s.baseUrl }));
    for (let i = 0; i < 3; i++) await client.sendOtp({ phone });
  });

  it("keeps the attempt cap and the phone lock, and no per-IP verify limit hides them", async () => {
    const verify = async (phone: string) =>
      reasonOf(await post(s.baseUrl, "/api/v1/auth/verify-otp", { phone, otp: "000000" }));
    const send = async (phone: string) =>
      expect((await post(s.baseUrl, "/api/v1/auth/send-otp", { phone })).status).toBe(200);

    const capped = uniquePhone();
    await send(capped);
    const tries: string[] = [];
    for (let i = 0; i < 6; i++) tries.push(await verify(capped));

    // Two codes, five wrong tries each: the tenth wrong code locks the phone for this client.
    const locked = uniquePhone();
    const wrong: string[] = [];
    for (let round = 0; round < 2; round++) {
      await send(locked);
      for (let i = 0; i < 5; i++) wrong.push(await verify(locked));
    }
    // A code of 000000 may really have been sent: that try logged in, and proves nothing either way.
    if ([...tries, ...wrong].includes("HTTP 200")) return;
    expect(tries).toEqual([...Array(5).fill("OTP_INCORRECT"), "OTP_ATTEMPTS_EXHAUSTED"]);
    expect(wrong).toEqual(Array(10).fill("OTP_INCORRECT"));
    expect(await verify(locked)).toBe("PHONE_LOCKED");
    expect(await reasonOf(await post(s.baseUrl, "/api/v1/auth/send-otp", { phone: locked }))).toBe(
      "PHONE_LOCKED",
    );
  });

  it("a request that came through a proxy is limited, even from a proxy on this machine", async () => {
    const phone = uniquePhone();
    const proxied = { "x-forwarded-for": "127.0.0.1" };
    expect((await post(s.baseUrl, "/api/v1/auth/send-otp", { phone }, proxied)).status).toBe(200);
    const again = await post(s.baseUrl, "/api/v1/auth/send-otp", { phone }, proxied);
    expect(await reasonOf(again)).toBe("OTP_COOLDOWN");
  });
});

describe("development mode, behind a trusted proxy on this machine", () => {
  let s: RunningApp;
  beforeAll(async () => {
    s = await startApp({ ...DEFAULT_LIMITS, TRUSTED_PROXIES: "127.0.0.1" }, { configuredSms: true });
  });
  afterAll(() => s?.close());

  it("limits the forwarded client", async () => {
    const phone = uniquePhone();
    const from = { "x-forwarded-for": "203.0.113.7" };
    expect((await post(s.baseUrl, "/api/v1/auth/send-otp", { phone }, from)).status).toBe(200);
    expect(await reasonOf(await post(s.baseUrl, "/api/v1/auth/send-otp", { phone }, from))).toBe(
      "OTP_COOLDOWN",
    );
  });
});

describe("a real SMS provider: every limit applies to everyone, loopback included", () => {
  let msg91: FakeMsg91;
  let s: RunningApp;
  beforeAll(async () => {
    msg91 = await startFakeMsg91();
    s = await startApp(
      {
        ...DEFAULT_LIMITS,
        NODE_ENV: "development",
        SMS_PROVIDER: "msg91",
        MSG91_AUTH_KEY: msg91.authKey,
        MSG91_TEMPLATE_ID: msg91.templateId,
        MSG91_API_BASE_URL: msg91.baseUrl,
      },
      { configuredSms: true },
    );
  });
  afterAll(async () => {
    await s?.close();
    await msg91?.close();
  });

  it("refuses a second code to one phone within the cooldown, over REST and gRPC", async () => {
    const phone = uniquePhone();
    expect((await post(s.baseUrl, "/api/v1/auth/send-otp", { phone })).status).toBe(200);
    expect(await reasonOf(await post(s.baseUrl, "/api/v1/auth/send-otp", { phone }))).toBe("OTP_COOLDOWN");
    const client = createClient(AuthService, createGrpcTransport({ baseUrl: s.baseUrl }));
    const err = await client.sendOtp({ phone }).catch((e: unknown) => ConnectError.from(e));
    expect(err).toBeInstanceOf(ConnectError);
    expect((err as ConnectError).code).toBe(Code.ResourceExhausted);
  });
});

describe("which callers are loopback", () => {
  const req = (peer: string, headers: Record<string, string> = {}) =>
    ({ socket: { remoteAddress: peer }, headers }) as unknown as Req;
  const resolve = clientResolver(new TrustedProxies(["127.0.0.1"]));

  it("is the socket peer on 127.0.0.0/8 or ::1, in any spelling", () => {
    for (const peer of ["127.0.0.1", "127.1.2.3", "::1", "0:0:0:0:0:0:0:1", "::ffff:127.0.0.1"]) {
      expect(resolve(req(peer)), peer).toEqual({ ip: peer.replace("::ffff:", ""), loopback: true });
    }
  });

  it("is never another address, nor a request that carries a proxy header", () => {
    for (const peer of ["10.0.0.1", "::2", "192.168.1.1", "128.0.0.1", "unknown"]) {
      expect(resolve(req(peer)).loopback, peer).toBeUndefined();
    }
    expect(resolve(req("127.0.0.1", { "x-forwarded-for": "127.0.0.1" })).loopback).toBeUndefined();
    expect(resolve(req("127.0.0.1", { forwarded: "for=127.0.0.1" })).loopback).toBeUndefined();
  });
});
