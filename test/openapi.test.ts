import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { restRoutes, VERIFICATION_REST_PATHS } from "../src/http/rest.js";
import { SESSION_REST_PATHS } from "../src/http/rest-sessions.js";
import { REASONS } from "../src/login/reasons.js";
import { type RunningApp, startApp } from "./support/app.js";
import { uniquePhone } from "./support/capture-sms.js";
import { loadOpenApi, OpenApiChecker } from "./support/openapi.js";

const SEND = "/api/v1/auth/send-otp";
const VERIFY = "/api/v1/auth/verify-otp";
const REFRESH = "/api/v1/auth/refresh";
const LOGOUT = "/api/v1/auth/logout";

const post = (body: unknown, type = "application/json"): RequestInit => ({
  method: "POST",
  headers: { "content-type": type },
  body: typeof body === "string" ? body : JSON.stringify(body),
});

/**
 * openapi.yaml against the running service: every `/api/v1` answer below is validated by the checker (ajv on
 * the document's own schemas), and the last test holds every documented path and status to having been seen.
 */
describe("openapi.yaml describes /api/v1 as served", () => {
  const api = new OpenApiChecker();
  let s: RunningApp;
  // Tight limits, to meet the 429s: one verify per address, a cooldown between two codes to one phone.
  let tight: RunningApp;

  beforeAll(async () => {
    s = await startApp();
    tight = await startApp({ RATE_LIMIT_IP_POINTS: "1", RATE_LIMIT_PHONE_COOLDOWN_SECONDS: "60" });
  });
  afterAll(async () => {
    await s?.close();
    await tight?.close();
  });

  it("documents exactly the REST routes the service has, and the reasons of src/login/reasons.ts", () => {
    expect(Object.keys(api.doc.paths).sort()).toEqual(
      [...restRoutes(s.app.login).keys(), ...SESSION_REST_PATHS, ...VERIFICATION_REST_PATHS].sort(),
    );
    const reason = api.doc.components.schemas?.Reason as { enum: string[] } | undefined;
    const reasons = reason?.enum ?? [];
    expect([...reasons].sort()).toEqual(Object.keys(REASONS).sort());
    expect(api.doc.openapi).toMatch(/^3\.1\./);
  });

  it("is served as JSON at GET /openapi.json", async () => {
    const res = await fetch(`${s.baseUrl}/openapi.json`);
    expect(res.status).toBe(200);
    expect(res.headers.get("content-type")).toMatch(/^application\/json/);
    expect(await res.json()).toEqual(loadOpenApi());
  });

  it("a whole login, and each refusal of each path, answer as documented", async () => {
    const phone = uniquePhone();
    const call = (path: string, init: RequestInit) => api.fetch(s.baseUrl, path, init);

    expect((await call(SEND, post({ phone }))).status).toBe(200);
    const code = s.sms.lastCode(phone);
    expect((await call(VERIFY, post({ phone, otp: code === "000000" ? "111111" : "000000" }))).status).toBe(
      401,
    );
    const login = await call(VERIFY, post({ phone, otp: code }));
    expect(login.status).toBe(200);
    const { refresh_token } = login.body as { refresh_token: string };
    const refreshed = await call(REFRESH, post({ refresh_token }));
    expect(refreshed.status).toBe(200);
    expect((await call(REFRESH, post({ refresh_token: "1.not-a-token" }))).status).toBe(401);
    const next = (refreshed.body as { refresh_token: string }).refresh_token;
    expect((await call(LOGOUT, post({ refresh_token: next }))).status).toBe(200);

    expect((await call(SEND, post({ phone: "not a phone" }))).status).toBe(400);
    expect((await call(VERIFY, post({ phone, otp: "12" }))).status).toBe(400);
    expect((await call(REFRESH, post({}))).status).toBe(400);
    expect((await call(LOGOUT, post({}))).status).toBe(400);

    for (const path of [SEND, VERIFY, REFRESH, LOGOUT]) {
      expect((await call(path, { method: "GET" })).status).toBe(405);
      expect((await call(path, post({ phone: "x".repeat(17 * 1024) }))).status).toBe(413);
      expect((await call(path, post("phone=1", "text/plain"))).status).toBe(415);
    }

    s.sms.failWith = new Error("provider down");
    try {
      expect((await call(SEND, post({ phone: uniquePhone() }))).status).toBe(503);
    } finally {
      s.sms.failWith = undefined;
    }
  });

  it("limit refusals carry retry_after_seconds and Retry-After as documented", async () => {
    const call = (path: string, init: RequestInit) => api.fetch(tight.baseUrl, path, init);
    const phone = uniquePhone();
    expect((await call(SEND, post({ phone }))).status).toBe(200);
    const again = await call(SEND, post({ phone }));
    expect(again.status).toBe(429);
    expect(again.body).toMatchObject({ reason: expect.stringMatching(/OTP_COOLDOWN|RATE_LIMIT_IP/) });
    expect((await call(VERIFY, post({ phone, otp: "000000" }))).status).not.toBe(429);
    expect((await call(VERIFY, post({ phone, otp: "000000" }))).status).toBe(429);
  });

  it("the checker refuses what the document does not allow", () => {
    const json = new Headers({ "content-type": "application/json", "x-error-reason": "NOT_A_REASON" });
    expect(api.check("POST", SEND, { status: 200, headers: json, body: { message: "x" } })).not.toEqual([]);
    const error = { code: "unauthenticated", message: "m", detail: "m", reason: "NOT_A_REASON" };
    expect(api.check("POST", VERIFY, { status: 401, headers: json, body: error }).join()).toMatch(/reason/);
    expect(api.check("POST", "/api/v1/nope", { status: 200, headers: json, body: {} })).not.toEqual([]);
  });

  it("the session paths answer as documented", async () => {
    const phone = uniquePhone();
    await api.fetch(s.baseUrl, SEND, post({ phone }));
    const login = await api.fetch(s.baseUrl, VERIFY, post({ phone, otp: s.sms.lastCode(phone) }));
    const { access_token } = login.body as { access_token: string };
    const as = (method: string, token = access_token): RequestInit => ({
      method,
      headers: { authorization: `Bearer ${token}` },
    });
    const BASE = "/api/v1/auth/sessions";
    const list = await api.fetch(s.baseUrl, BASE, as("GET"));
    expect(list.status).toBe(200);
    const [mine] = (list.body as { sessions: { id: string }[] }).sessions;
    expect((await api.fetch(s.baseUrl, BASE, as("GET", "nope"))).status).toBe(401);
    expect((await api.fetch(s.baseUrl, BASE, as("POST"))).status).toBe(405);
    expect((await api.fetch(s.baseUrl, `${BASE}/revoke-others`, as("POST"))).status).toBe(200);
    expect((await api.fetch(s.baseUrl, `${BASE}/revoke-others`, as("POST", "nope"))).status).toBe(401);
    expect((await api.fetch(s.baseUrl, `${BASE}/revoke-others`, as("GET"))).status).toBe(405);
    expect((await api.fetch(s.baseUrl, `${BASE}/no-such-session`, as("DELETE"))).status).toBe(404);
    expect((await api.fetch(s.baseUrl, `${BASE}/x`, as("DELETE", "nope"))).status).toBe(401);
    expect((await api.fetch(s.baseUrl, `${BASE}/x`, as("GET"))).status).toBe(405);
    expect((await api.fetch(s.baseUrl, `${BASE}/revoke-all`, as("GET"))).status).toBe(405);
    expect((await api.fetch(s.baseUrl, `${BASE}/revoke-all`, as("POST", "nope"))).status).toBe(401);
    expect((await api.fetch(s.baseUrl, `${BASE}/${mine?.id}`, as("DELETE"))).status).toBe(200);
    // The current session is gone now, so its access token no longer opens the others.
    const again = await startSecondLogin();
    expect((await api.fetch(s.baseUrl, `${BASE}/revoke-all`, as("POST", again))).status).toBe(200);
  });

  it("the verification paths answer as documented", async () => {
    const phone = uniquePhone();
    const sent = await api.fetch(s.baseUrl, SEND, post({ phone }));
    expect(sent.status).toBe(200);
    const { verification_id: id } = sent.body as { verification_id: string };
    const BASE = "/api/v1/auth/verifications";
    const unknown = "VE00000000000000000000000000000000";
    const got = await api.fetch(s.baseUrl, `${BASE}/${id}`, { method: "GET" });
    expect(got).toMatchObject({ status: 200, body: { verification_id: id, status: "pending" } });
    expect((await api.fetch(s.baseUrl, `${BASE}/${unknown}`, { method: "GET" })).status).toBe(404);
    expect((await api.fetch(s.baseUrl, `${BASE}/${id}`, post({}))).status).toBe(405);
    // A verification id that is not the phone's: the code is not even compared.
    const other = await api.fetch(
      s.baseUrl,
      VERIFY,
      post({ phone, otp: "000000", verification_id: unknown }),
    );
    expect(other).toMatchObject({ status: 404, body: { reason: "VERIFICATION_NOT_FOUND" } });
    const canceled = await api.fetch(s.baseUrl, `${BASE}/${id}/cancel`, { method: "POST" });
    expect(canceled).toMatchObject({ status: 200, body: { verification_id: id, status: "canceled" } });
    expect((await api.fetch(s.baseUrl, `${BASE}/${unknown}/cancel`, { method: "POST" })).status).toBe(404);
    expect((await api.fetch(s.baseUrl, `${BASE}/${id}/cancel`, { method: "GET" })).status).toBe(405);
  });

  async function startSecondLogin(): Promise<string> {
    const phone = uniquePhone();
    await api.fetch(s.baseUrl, SEND, post({ phone }));
    const login = await api.fetch(s.baseUrl, VERIFY, post({ phone, otp: s.sms.lastCode(phone) }));
    return (login.body as { access_token: string }).access_token;
  }

  it("left no documented path and status unexercised", () => {
    const missing = api.documented().filter((k) => !api.seen.has(k));
    expect(missing).toEqual([]);
  });
});
