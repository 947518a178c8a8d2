import { readFileSync } from "node:fs";
import { type Client, type Code, ConnectError, createClient } from "@connectrpc/connect";
import { codeFromString, codeToHttpStatus, codeToString } from "@connectrpc/connect/protocol-connect";
import {
  createConnectTransport,
  createGrpcTransport,
  createGrpcWebTransport,
} from "@connectrpc/connect-node";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { AuthService } from "../gen/auth/v1/auth_pb.js";
import { ErrorInfoSchema, RetryInfoSchema } from "../gen/google/rpc/error_details_pb.js";
import { REASONS, type Reason } from "../src/login/reasons.js";
import { type RunningApp, startApp } from "./support/app.js";
import { uniquePhone } from "./support/capture-sms.js";

describe("the README's reason table", () => {
  const rows = new Map<string, { code: string; status: number }>();
  for (const m of readFileSync(new URL("../README.md", import.meta.url), "utf8").matchAll(
    /^\| `([A-Z_]+)` \| `([a-z_]+)` \| (\d{3}) \|/gm,
  )) {
    rows.set(m[1] as string, { code: m[2] as string, status: Number(m[3]) });
  }

  it("lists exactly the catalogue", () => {
    expect([...rows.keys()].sort()).toEqual(Object.keys(REASONS).sort());
  });

  it("states each reason's Connect code and the HTTP status the REST adapter answers", () => {
    for (const [reason, entry] of Object.entries(REASONS)) {
      const code = codeFromString(entry.kind);
      expect(code, reason).toBeDefined();
      const status = "httpStatus" in entry ? entry.httpStatus : codeToHttpStatus(code as Code);
      expect(rows.get(reason), reason).toEqual({ code: codeToString(code as Code), status });
    }
  });
});

/** One refusal as each protocol delivered it. */
interface Seen {
  readonly code: Code;
  readonly reason: string | undefined;
  readonly domain: string | undefined;
  readonly metadata: Record<string, string>;
  readonly retrySeconds: bigint | undefined;
  readonly header: string | null;
}

describe("a refusal reaches every caller with the same reason", () => {
  let s: RunningApp;
  let clients: Record<string, Client<typeof AuthService>>;
  beforeAll(async () => {
    s = await startApp({ RATE_LIMIT_PHONE_COOLDOWN_SECONDS: "60", SMS_ALLOWED_COUNTRIES: "IN" });
    clients = {
      gRPC: createClient(AuthService, createGrpcTransport({ baseUrl: s.baseUrl })),
      "gRPC-Web": createClient(
        AuthService,
        createGrpcWebTransport({ baseUrl: s.baseUrl, httpVersion: "1.1" }),
      ),
      Connect: createClient(AuthService, createConnectTransport({ baseUrl: s.baseUrl, httpVersion: "1.1" })),
    };
  });
  afterAll(() => s.close());

  async function rpc(call: (c: Client<typeof AuthService>) => Promise<unknown>): Promise<Seen[]> {
    const seen: Seen[] = [];
    for (const client of Object.values(clients)) {
      const err = ConnectError.from(
        await call(client).then(
          () => new Error("expected a refusal"),
          (e: unknown) => e,
        ),
      );
      const [info] = err.findDetails(ErrorInfoSchema);
      const [retry] = err.findDetails(RetryInfoSchema);
      seen.push({
        code: err.code,
        reason: info?.reason,
        domain: info?.domain,
        metadata: { ...info?.metadata },
        retrySeconds: retry?.retryDelay?.seconds,
        header: err.metadata.get("x-error-reason"),
      });
    }
    return seen;
  }

  async function rest(path: string, body: unknown) {
    const res = await fetch(`${s.baseUrl}/api/v1/auth/${path}`, {
      method: "POST",
      headers: { "content-type": "application/json" },
      body: JSON.stringify(body),
    });
    return {
      status: res.status,
      header: res.headers.get("x-error-reason"),
      retryAfter: res.headers.get("retry-after"),
      body: (await res.json()) as Record<string, unknown>,
    };
  }

  function expectSame(seen: Seen[], reason: Reason, retry: boolean, metadata: Record<string, string> = {}) {
    const code = codeFromString(REASONS[reason].kind);
    for (const one of seen) {
      expect(one).toMatchObject({ code, reason, domain: "otp-auth", header: reason, metadata });
      if (retry) expect(one.retrySeconds).toBeGreaterThanOrEqual(1n);
      else expect(one.retrySeconds).toBeUndefined();
    }
  }

  it("INVALID_PHONE", async () => {
    expectSame(await rpc((c) => c.sendOtp({ phone: "12" })), "INVALID_PHONE", false);
    const r = await rest("send-otp", { phone: "12" });
    expect(r).toMatchObject({ status: 400, header: "INVALID_PHONE", body: { reason: "INVALID_PHONE" } });
    expect(r.body).not.toHaveProperty("retry_after_seconds");
  });

  it("INVALID_OTP_FORMAT", async () => {
    const phone = uniquePhone();
    expectSame(await rpc((c) => c.verifyOtp({ phone, otp: "12" })), "INVALID_OTP_FORMAT", false);
    expect(await rest("verify-otp", { phone, otp: "12" })).toMatchObject({
      status: 400,
      body: { code: "invalid_argument", reason: "INVALID_OTP_FORMAT" },
    });
  });

  it("COUNTRY_NOT_ALLOWED", async () => {
    const phone = "+447911123456";
    expectSame(await rpc((c) => c.sendOtp({ phone })), "COUNTRY_NOT_ALLOWED", false);
    expect(await rest("send-otp", { phone })).toMatchObject({
      status: 400,
      body: { code: "failed_precondition", reason: "COUNTRY_NOT_ALLOWED" },
    });
  });

  it("OTP_EXPIRED", async () => {
    const phone = uniquePhone();
    expectSame(await rpc((c) => c.verifyOtp({ phone, otp: "123456" })), "OTP_EXPIRED", false);
    expect(await rest("verify-otp", { phone, otp: "123456" })).toMatchObject({
      status: 401,
      body: { reason: "OTP_EXPIRED" },
    });
  });

  it("OTP_INCORRECT carries the attempts left", async () => {
    const phone = uniquePhone();
    await clients.Connect?.sendOtp({ phone });
    const wrong = s.sms.lastCode(phone) === "000000" ? "111111" : "000000";
    const seen = await rpc((c) => c.verifyOtp({ phone, otp: wrong }));
    // Each protocol's guess uses one attempt of the same code: 4, 3, 2 left.
    expect(seen.map((x) => x.metadata.attempts_left)).toEqual(["4", "3", "2"]);
    expectSame([seen[0] as Seen], "OTP_INCORRECT", false, { attempts_left: "4" });
    expect(await rest("verify-otp", { phone, otp: wrong })).toMatchObject({
      status: 401,
      body: { reason: "OTP_INCORRECT", metadata: { attempts_left: "1" }, message: /1 attempt left/ },
    });
  });

  it("OTP_COOLDOWN carries RetryInfo, Retry-After and retry_after_seconds", async () => {
    const phone = uniquePhone();
    await clients.Connect?.sendOtp({ phone });
    expectSame(await rpc((c) => c.sendOtp({ phone })), "OTP_COOLDOWN", true);
    const r = await rest("send-otp", { phone });
    expect(r).toMatchObject({ status: 429, header: "OTP_COOLDOWN", body: { reason: "OTP_COOLDOWN" } });
    expect(r.body.retry_after_seconds).toBe(Number(r.retryAfter));
    expect(r.body.retry_after_seconds).toBeGreaterThanOrEqual(1);
  });

  it("REFRESH_TOKEN_INVALID", async () => {
    expectSame(await rpc((c) => c.refreshToken({ refreshToken: "nope" })), "REFRESH_TOKEN_INVALID", false);
    expect(await rest("refresh", { refresh_token: "nope" })).toMatchObject({
      status: 401,
      body: { reason: "REFRESH_TOKEN_INVALID" },
    });
  });

  it("SMS_UNAVAILABLE", async () => {
    s.sms.failWith = new Error("provider down");
    try {
      expectSame(await rpc((c) => c.sendOtp({ phone: uniquePhone() })), "SMS_UNAVAILABLE", false);
      expect(await rest("send-otp", { phone: uniquePhone() })).toMatchObject({
        status: 503,
        body: { code: "unavailable", reason: "SMS_UNAVAILABLE" },
      });
    } finally {
      s.sms.failWith = undefined;
    }
  });

  it("REST's own refusals: MALFORMED_REQUEST, REQUEST_TOO_LARGE, NOT_FOUND", async () => {
    expect(await rest("send-otp", { phone: 42 })).toMatchObject({
      status: 400,
      body: { reason: "MALFORMED_REQUEST" },
    });
    expect(await rest("send-otp", { phone: "x".repeat(20_000) })).toMatchObject({
      status: 413,
      body: { code: "resource_exhausted", reason: "REQUEST_TOO_LARGE" },
    });
    expect(await rest("nowhere", {})).toMatchObject({ status: 404, body: { reason: "NOT_FOUND" } });
  });
});
