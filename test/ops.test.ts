import { Code, ConnectError, createClient } from "@connectrpc/connect";
import {
  createConnectTransport,
  createGrpcTransport,
  createGrpcWebTransport,
} from "@connectrpc/connect-node";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { AuthService } from "../gen/auth/v1/auth_pb.js";
import { Health, HealthCheckResponse_ServingStatus as Status } from "../gen/grpc/health/v1/health_pb.js";
import { type RunningApp, startApp } from "./support/app.js";
import { uniquePhone } from "./support/capture-sms.js";
import { describeWithRedis } from "./support/redis.js";
import { until } from "./support/wait.js";

const get = (s: RunningApp, path: string, headers: Record<string, string> = {}) =>
  fetch(`${s.baseUrl}${path}`, { headers });

describe("health and readiness (embedded store)", () => {
  let s: RunningApp;
  beforeAll(async () => {
    s = await startApp();
  });
  afterAll(() => s?.close());

  it("GET /healthz and /readyz answer, and only to GET", async () => {
    const live = await get(s, "/healthz");
    expect(live.status).toBe(200);
    expect(await live.json()).toEqual({ status: "ok" });
    const ready = await get(s, "/readyz");
    expect(ready.status).toBe(200);
    expect(await ready.json()).toEqual({ status: "ready", checks: { "shutting down": "ok", store: "ok" } });
    const post = await fetch(`${s.baseUrl}/readyz`, { method: "POST" });
    expect(post.status).toBe(405);
  });

  it("grpc.health.v1 Check answers for the server and for AuthService, NOT_FOUND for others", async () => {
    for (const transport of [
      createGrpcTransport({ baseUrl: s.baseUrl }),
      createConnectTransport({ baseUrl: s.baseUrl, httpVersion: "1.1" }),
    ]) {
      const health = createClient(Health, transport);
      expect((await health.check({ service: "" })).status).toBe(Status.SERVING);
      expect((await health.check({ service: "auth.v1.AuthService" })).status).toBe(Status.SERVING);
      const err = await health.check({ service: "nope.v1.Nope" }).catch((e: unknown) => e);
      expect(ConnectError.from(err).code).toBe(Code.NotFound);
    }
    const list = await createClient(Health, createGrpcTransport({ baseUrl: s.baseUrl })).list({});
    expect(Object.keys(list.statuses).sort()).toEqual(["", "auth.v1.AuthService"]);
  });

  it("echoes a sane x-request-id and replaces anything else with a fresh id", async () => {
    const echoed = await get(s, "/healthz", { "x-request-id": "trace-42.abc" });
    expect(echoed.headers.get("x-request-id")).toBe("trace-42.abc");
    const replaced = await get(s, "/healthz", { "x-request-id": "bad id\twith spaces" });
    expect(replaced.headers.get("x-request-id")).toMatch(/^[0-9a-f-]{36}$/);
    const fresh = await get(s, "/healthz");
    expect(fresh.headers.get("x-request-id")).toMatch(/^[0-9a-f-]{36}$/);
    // gRPC carries it as response metadata.
    let header: Headers | undefined;
    await createClient(Health, createGrpcTransport({ baseUrl: s.baseUrl })).check(
      { service: "" },
      { headers: { "x-request-id": "grpc-7" }, onHeader: (h) => (header = h) },
    );
    expect(header?.get("x-request-id")).toBe("grpc-7");
  });
});

describeWithRedis(
  "readiness follows the store (Redis)",
  (redis) => {
    let s: RunningApp;
    beforeAll(async () => {
      s = await startApp({ REDIS_URL: redis.url });
    });
    afterAll(() => s?.close());

    it("is not ready while Redis is down, and Watch reports each change", async () => {
      const health = createClient(Health, createGrpcTransport({ baseUrl: s.baseUrl }));
      // Watch re-checks every 5 s (and at once on shutdown), well within the waits below.
      const controller = new AbortController();
      const seen: Status[] = [];
      let watchError: unknown;
      const watching = (async () => {
        try {
          for await (const r of health.watch({ service: "" }, { signal: controller.signal }))
            seen.push(r.status);
        } catch (e) {
          if (!controller.signal.aborted) watchError = e;
        }
      })();
      // Until the Redis client has connected the store is not ready; what matters is what follows SERVING.
      await until(() => seen.at(-1) === Status.SERVING, { what: "Watch to say SERVING" });
      seen.splice(0, seen.length - 1);

      await redis.stop();
      await until(async () => (await get(s, "/readyz")).status === 503, {
        what: "/readyz to say 503",
      });
      const body = (await (await get(s, "/readyz")).json()) as { checks: Record<string, string> };
      expect(body.checks.store).not.toBe("ok");
      expect((await health.check({ service: "" })).status).toBe(Status.NOT_SERVING);
      expect((await get(s, "/healthz")).status).toBe(200);
      await until(() => seen.includes(Status.NOT_SERVING), {
        what: "Watch to say NOT_SERVING",
      });

      await redis.start();
      await until(async () => (await get(s, "/readyz")).status === 200, {
        what: "/readyz to recover",
        timeoutMs: 20_000,
      });
      await until(() => seen.at(-1) === Status.SERVING, {
        what: "Watch to say SERVING again",
        timeoutMs: 20_000,
      });
      controller.abort();
      await watching;
      expect(watchError).toBeUndefined();
      expect(seen).toEqual([Status.SERVING, Status.NOT_SERVING, Status.SERVING]);
    }, 60_000);
  },
  { outage: true },
);

describe("metrics", () => {
  let s: RunningApp;
  beforeAll(async () => {
    s = await startApp();
  });
  afterAll(() => s?.close());

  const scrape = async () => {
    const res = await get(s, "/metrics");
    expect(res.status).toBe(200);
    expect(res.headers.get("content-type")).toMatch(/^text\/plain; version=0\.0\.4/);
    return res.text();
  };
  /** The value of one sample, 0 when absent. */
  const value = (text: string, series: string) => {
    const line = text.split("\n").find((l) => l.startsWith(`${series} `));
    return line ? Number(line.slice(series.length + 1)) : 0;
  };

  it("counts requests by procedure, protocol and code, and the login's codes and SMS sends", async () => {
    const phone = uniquePhone();
    const transports = {
      grpc: createGrpcTransport({ baseUrl: s.baseUrl }),
      grpc_web: createGrpcWebTransport({ baseUrl: s.baseUrl, httpVersion: "1.1" }),
      connect: createConnectTransport({ baseUrl: s.baseUrl, httpVersion: "1.1" }),
    };
    for (const t of Object.values(transports)) await createClient(AuthService, t).sendOtp({ phone });
    const connect = createClient(AuthService, transports.connect);
    await expect(
      connect.verifyOtp({ phone, otp: "000000" === s.sms.lastCode(phone) ? "111111" : "000000" }),
    ).rejects.toThrow(/incorrect code/);
    await connect.verifyOtp({ phone, otp: s.sms.lastCode(phone) });
    await expect(connect.verifyOtp({ phone, otp: s.sms.lastCode(phone) })).rejects.toThrow(/no active code/);
    const rest = await fetch(`${s.baseUrl}/api/v1/auth/send-otp`, {
      method: "POST",
      headers: { "content-type": "application/json" },
      body: JSON.stringify({ phone: "not a phone" }),
    });
    expect(rest.status).toBe(400);
    s.sms.failWith = new Error("provider exploded");
    await expect(connect.sendOtp({ phone })).rejects.toThrow();
    s.sms.failWith = undefined;

    const text = await scrape();
    const send = '{procedure="/auth.v1.AuthService/SendOtp"';
    const verify = '{procedure="/auth.v1.AuthService/VerifyOtp"';
    expect(value(text, `otp_auth_requests_total${send},protocol="grpc",code="ok"}`)).toBe(1);
    expect(value(text, `otp_auth_requests_total${send},protocol="grpc_web",code="ok"}`)).toBe(1);
    expect(value(text, `otp_auth_requests_total${send},protocol="connect",code="ok"}`)).toBe(1);
    expect(value(text, `otp_auth_requests_total${send},protocol="connect",code="unavailable"}`)).toBe(1);
    expect(value(text, `otp_auth_requests_total${verify},protocol="connect",code="ok"}`)).toBe(1);
    expect(value(text, `otp_auth_requests_total${verify},protocol="connect",code="unauthenticated"}`)).toBe(
      2,
    );
    expect(
      value(
        text,
        'otp_auth_requests_total{procedure="/api/v1/auth/send-otp",protocol="rest",code="invalid_argument"}',
      ),
    ).toBe(1);
    expect(value(text, `otp_auth_request_duration_seconds_count${verify},protocol="connect"}`)).toBe(3);
    expect(value(text, "otp_auth_codes_sent_total")).toBe(3);
    expect(value(text, "otp_auth_codes_verified_total")).toBe(1);
    expect(value(text, 'otp_auth_codes_failed_total{reason="wrong"}')).toBe(1);
    expect(value(text, "otp_auth_codes_expired_total")).toBe(1);
    expect(value(text, 'otp_auth_sms_sends_total{provider="capture",outcome="sent"}')).toBe(3);
    expect(value(text, 'otp_auth_sms_sends_total{provider="capture",outcome="error"}')).toBe(1);
    // Default process metrics ride along.
    expect(text).toMatch(/^process_cpu_seconds_total /m);
    expect(text).toMatch(/^# TYPE otp_auth_limit_refusals_total counter/m);
  });

  it("counts a request a limit really refused, by the refusal's reason", async () => {
    // Through the whole path (transport, login core, limiter, events): a metric reported by hand proves only
    // that the counter exists, not that a refusal ever reaches it.
    const limited = await startApp({ RATE_LIMIT_PHONE_COOLDOWN_SECONDS: "60" });
    try {
      const series = 'otp_auth_limit_refusals_total{limit="OTP_COOLDOWN"}';
      const send = (phone: string) =>
        fetch(`${limited.baseUrl}/api/v1/auth/send-otp`, {
          method: "POST",
          headers: { "content-type": "application/json" },
          body: JSON.stringify({ phone }),
        });
      const scrapeLimited = async () => (await get(limited, "/metrics")).text();
      const phone = uniquePhone();
      expect((await send(phone)).status).toBe(200);
      expect(value(await scrapeLimited(), series)).toBe(0);
      expect((await send(phone)).status).toBe(429);
      expect(value(await scrapeLimited(), series)).toBe(1);
      // A code that is merely wrong is not a limit's refusal.
      await createClient(AuthService, createGrpcTransport({ baseUrl: limited.baseUrl }))
        .verifyOtp({ phone, otp: limited.sms.lastCode(phone) === "000000" ? "111111" : "000000" })
        .catch(() => {});
      const text = await scrapeLimited();
      expect(value(text, series)).toBe(1);
      const refusals = text.split("\n").filter((l) => l.startsWith("otp_auth_limit_refusals_total{"));
      expect(refusals).toEqual([`${series} 1`]);
    } finally {
      await limited.close();
    }
  });

  it("METRICS_ENABLED=false removes /metrics", async () => {
    const off = await startApp({ METRICS_ENABLED: "false" });
    try {
      expect(off.app.metrics).toBeUndefined();
      expect((await get(off, "/metrics")).status).toBe(404);
      await createClient(AuthService, createGrpcTransport({ baseUrl: off.baseUrl })).sendOtp({
        phone: uniquePhone(),
      });
    } finally {
      await off.close();
    }
  });
});

describe("METRICS_PORT and METRICS_TOKEN", () => {
  const TOKEN = "a-scraper-secret-0123456789";
  const scrapeAt = (url: string, headers: Record<string, string> = {}) => fetch(url, { headers });

  it("METRICS_PORT serves /metrics on a listener of its own, and the API port answers it 404", async () => {
    const s = await startApp({ METRICS_PORT: "0" });
    try {
      const url = s.metricsUrl ?? "";
      expect(url).toMatch(/^http:\/\/127\.0\.0\.1:\d+\/metrics$/);
      expect(new URL(url).port).not.toBe(String(s.port));
      expect((await get(s, "/metrics")).status).toBe(404);
      // Still counted: only where it is read from moved.
      await createClient(AuthService, createGrpcTransport({ baseUrl: s.baseUrl })).sendOtp({
        phone: uniquePhone(),
      });
      const res = await scrapeAt(url);
      expect(res.status).toBe(200);
      expect(res.headers.get("content-type")).toMatch(/^text\/plain; version=0\.0\.4/);
      expect(await res.text()).toMatch(/^otp_auth_codes_sent_total 1$/m);
      // The metrics port serves nothing else, and only reads.
      const other = new URL(url);
      for (const path of ["/healthz", "/api/v1/auth/send-otp", "/"]) {
        other.pathname = path;
        expect((await scrapeAt(other.toString())).status, path).toBe(404);
      }
      expect((await fetch(url, { method: "POST" })).status).toBe(405);
      // The API port keeps its probes.
      expect((await get(s, "/healthz")).status).toBe(200);
    } finally {
      await s.close();
    }
    // close() took the metrics listener down with the app.
    await expect(scrapeAt(s.metricsUrl ?? "")).rejects.toThrow();
  });

  it("METRICS_TOKEN answers 401 to a scrape without the bearer token, on the API port", async () => {
    const s = await startApp({ METRICS_TOKEN: TOKEN });
    try {
      for (const headers of [
        {},
        { authorization: `Bearer ${TOKEN}x` },
        { authorization: `Basic ${TOKEN}` },
      ]) {
        const res = await get(s, "/metrics", headers);
        expect(res.status).toBe(401);
        expect(res.headers.get("www-authenticate")).toMatch(/^Bearer/);
        expect(await res.text()).not.toMatch(/otp_auth_/);
      }
      expect((await get(s, "/metrics", { authorization: `Bearer ${TOKEN}` })).status).toBe(200);
    } finally {
      await s.close();
    }
  });

  it("METRICS_TOKEN guards the metrics port too", async () => {
    const s = await startApp({ METRICS_PORT: "0", METRICS_TOKEN: TOKEN });
    try {
      const url = s.metricsUrl ?? "";
      expect((await scrapeAt(url)).status).toBe(401);
      expect((await scrapeAt(url, { authorization: `bearer ${TOKEN}` })).status).toBe(200);
      expect((await get(s, "/metrics", { authorization: `Bearer ${TOKEN}` })).status).toBe(404);
    } finally {
      await s.close();
    }
  });
});
