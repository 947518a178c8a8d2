import { type Client, ConnectError, createClient, type Transport } from "@connectrpc/connect";
import {
  createConnectTransport,
  createGrpcTransport,
  createGrpcWebTransport,
} from "@connectrpc/connect-node";
import { afterAll, beforeAll, expect, it } from "vitest";
import { AuthService } from "../gen/auth/v1/auth_pb.js";
import { type RunningApp, startApp } from "./support/app.js";
import { uniquePhone } from "./support/capture-sms.js";
import { describeWithRedis } from "./support/redis.js";

interface Tokens {
  readonly access: string;
  readonly refresh: string;
}
interface Listed {
  readonly id: string;
  readonly device: string;
  readonly current: boolean;
  readonly ip: string;
}

/** The session flows as one protocol speaks them; a refusal rejects with its reason. */
interface Driver {
  login(phone: string, device: string): Promise<Tokens>;
  refresh(refreshToken: string): Promise<Tokens>;
  list(access: string | undefined): Promise<Listed[]>;
  revoke(access: string, id: string): Promise<void>;
  revokeOthers(access: string): Promise<number>;
  revokeAll(access: string): Promise<number>;
}

/** The reason a call was refused with, or "ok". */
const reason = (p: Promise<unknown>): Promise<string> =>
  p.then(
    () => "ok",
    (e: unknown) =>
      e instanceof RestRefusal ? e.reason : (ConnectError.from(e).metadata.get("x-error-reason") ?? "?"),
  );

class RestRefusal extends Error {
  constructor(
    readonly status: number,
    readonly reason: string,
  ) {
    super(`${status} ${reason}`);
  }
}

function restDriver(app: RunningApp): Driver {
  const call = async (
    method: string,
    path: string,
    opts: { body?: unknown; bearer?: string; ua?: string },
  ) => {
    const headers: Record<string, string> = { "content-type": "application/json" };
    if (opts.bearer !== undefined) headers.authorization = `Bearer ${opts.bearer}`;
    if (opts.ua !== undefined) headers["user-agent"] = opts.ua;
    const res = await fetch(`${app.baseUrl}${path}`, {
      method,
      headers,
      ...(opts.body === undefined ? {} : { body: JSON.stringify(opts.body) }),
    });
    const body = (await res.json()) as Record<string, unknown>;
    if (res.status !== 200) throw new RestRefusal(res.status, String(body.reason));
    return body;
  };
  const pair = (b: Record<string, unknown>) => ({
    access: String(b.access_token),
    refresh: String(b.refresh_token),
  });
  return {
    async login(phone, device) {
      await call("POST", "/api/v1/auth/send-otp", { body: { phone } });
      // REST names the session by its User-Agent, as a browser or app would.
      return pair(
        await call("POST", "/api/v1/auth/verify-otp", {
          body: { phone, otp: app.sms.lastCode(phone) },
          ua: device,
        }),
      );
    },
    refresh: async (refreshToken) =>
      pair(await call("POST", "/api/v1/auth/refresh", { body: { refresh_token: refreshToken } })),
    async list(access) {
      const body = await call("GET", "/api/v1/auth/sessions", access === undefined ? {} : { bearer: access });
      return (body.sessions as Record<string, unknown>[]).map((s) => {
        expect(Date.parse(String(s.created_at))).toBeGreaterThan(0);
        expect(Date.parse(String(s.last_used_at))).toBeGreaterThanOrEqual(Date.parse(String(s.created_at)));
        return {
          id: String(s.id),
          device: String(s.device_name),
          current: s.current === true,
          ip: String(s.ip),
        };
      });
    },
    async revoke(access, id) {
      await call("DELETE", `/api/v1/auth/sessions/${encodeURIComponent(id)}`, { bearer: access });
    },
    revokeOthers: async (access) =>
      Number((await call("POST", "/api/v1/auth/sessions/revoke-others", { bearer: access })).revoked_count),
    revokeAll: async (access) =>
      Number((await call("POST", "/api/v1/auth/sessions/revoke-all", { bearer: access })).revoked_count),
  };
}

function rpcDriver(app: RunningApp, client: Client<typeof AuthService>): Driver {
  const auth = (access: string | undefined) =>
    access === undefined ? {} : { headers: { authorization: `Bearer ${access}` } };
  return {
    async login(phone, device) {
      await client.sendOtp({ phone });
      const s = await client.verifyOtp({ phone, otp: app.sms.lastCode(phone), deviceName: device });
      return { access: s.accessToken, refresh: s.refreshToken };
    },
    async refresh(refreshToken) {
      const p = await client.refreshToken({ refreshToken });
      return { access: p.accessToken, refresh: p.refreshToken };
    },
    async list(access) {
      const { sessions } = await client.listSessions({}, auth(access));
      return sessions.map((s) => {
        expect(Number(s.createdAt?.seconds)).toBeGreaterThan(0);
        return { id: s.id, device: s.deviceName, current: s.current, ip: s.ip };
      });
    },
    async revoke(access, id) {
      await client.revokeSession({ sessionId: id }, auth(access));
    },
    revokeOthers: async (access) => (await client.revokeOtherSessions({}, auth(access))).revokedCount,
    revokeAll: async (access) => (await client.revokeAllSessions({}, auth(access))).revokedCount,
  };
}

describeWithRedis("sessions: list and revoke, over every protocol (Redis-backed)", (redis) => {
  let s: RunningApp;
  beforeAll(async () => {
    s = await startApp({ REDIS_URL: redis.url });
  });
  afterAll(() => s?.close());

  const transports: Record<string, () => Transport> = {
    "Connect JSON": () => createConnectTransport({ baseUrl: s.baseUrl, httpVersion: "1.1" }),
    "gRPC (generated client, createGrpcTransport)": () => createGrpcTransport({ baseUrl: s.baseUrl }),
    "gRPC-Web": () => createGrpcWebTransport({ baseUrl: s.baseUrl, httpVersion: "1.1" }),
  };
  const drivers: [string, () => Driver][] = [
    ["REST /api/v1", () => restDriver(s)],
    ...Object.entries(transports).map(([name, t]): [string, () => Driver] => [
      name,
      () => rpcDriver(s, createClient(AuthService, t())),
    ]),
  ];

  for (const [name, driver] of drivers) {
    it(`${name}: lists the caller's sessions with their device labels, the current one marked`, async () => {
      const d = driver();
      const phone = uniquePhone();
      const phoneSession = await d.login(phone, "Asha's phone");
      const laptop = await d.login(phone, "Firefox on the laptop");
      const fromPhone = await d.list(phoneSession.access);
      expect(fromPhone.map((x) => [x.device, x.current]).sort()).toEqual([
        ["Asha's phone", true],
        ["Firefox on the laptop", false],
      ]);
      expect(fromPhone.every((x) => x.ip === "127.0.0.1")).toBe(true);
      // The most recently used first; from the laptop, the laptop is current.
      const fromLaptop = await d.list(laptop.access);
      expect(fromLaptop.find((x) => x.current)?.device).toBe("Firefox on the laptop");
      // A refresh keeps the session (same id) and its access tokens name it.
      const refreshed = await d.refresh(laptop.refresh);
      const after = await d.list(refreshed.access);
      expect(after.find((x) => x.current)?.id).toBe(fromLaptop.find((x) => x.current)?.id);
      expect(after).toHaveLength(2);
      expect(await reason(d.list(undefined))).toBe("ACCESS_TOKEN_INVALID");
    });

    it(`${name}: revokes one session; its refresh token then fails with REFRESH_TOKEN_INVALID`, async () => {
      const d = driver();
      const phone = uniquePhone();
      const a = await d.login(phone, "a");
      const b = await d.login(phone, "b");
      const bId = (await d.list(b.access)).find((x) => x.current)?.id ?? "";
      await d.revoke(a.access, bId);
      expect(await reason(d.refresh(b.refresh))).toBe("REFRESH_TOKEN_INVALID");
      expect((await d.list(a.access)).map((x) => x.device)).toEqual(["a"]);
      expect(await reason(d.revoke(a.access, bId))).toBe("SESSION_NOT_FOUND");
      // The revoked session's access token, still unexpired, can no longer see or change anything.
      expect(await reason(d.list(b.access))).toBe("ACCESS_TOKEN_INVALID");
      expect(await reason(d.revokeAll(b.access))).toBe("ACCESS_TOKEN_INVALID");
      expect(await reason(d.refresh(a.refresh))).toBe("ok");
    });

    it(`${name}: revoke-others keeps the caller's session; revoke-all ends it too`, async () => {
      const d = driver();
      const phone = uniquePhone();
      const me = await d.login(phone, "me");
      const others = [await d.login(phone, "x"), await d.login(phone, "y")];
      expect(await d.revokeOthers(me.access)).toBe(2);
      for (const o of others) expect(await reason(d.refresh(o.refresh))).toBe("REFRESH_TOKEN_INVALID");
      const mine = await d.refresh(me.refresh);
      expect((await d.list(mine.access)).map((x) => [x.device, x.current])).toEqual([["me", true]]);
      await d.login(phone, "z");
      expect(await d.revokeAll(mine.access)).toBe(2);
      expect(await reason(d.refresh(mine.refresh))).toBe("REFRESH_TOKEN_INVALID");
      expect(await reason(d.list(mine.access))).toBe("ACCESS_TOKEN_INVALID");
    });

    it(`${name}: can never see or revoke another user's session`, async () => {
      const d = driver();
      const alice = await d.login(uniquePhone(), "alice");
      const bob = await d.login(uniquePhone(), "bob");
      const bobId = (await d.list(bob.access))[0]?.id ?? "";
      expect((await d.list(alice.access)).map((x) => x.id)).not.toContain(bobId);
      expect(await reason(d.revoke(alice.access, bobId))).toBe("SESSION_NOT_FOUND");
      expect(await d.revokeOthers(alice.access)).toBe(0);
      expect(await d.revokeAll(alice.access)).toBe(1);
      expect((await d.list(bob.access)).map((x) => x.id)).toEqual([bobId]);
      expect(await reason(d.refresh(bob.refresh))).toBe("ok");
    });
  }

  it("REST: the session paths answer only their own method", async () => {
    const res = await fetch(`${s.baseUrl}/api/v1/auth/sessions`, { method: "POST" });
    expect(res.status).toBe(405);
    expect(res.headers.get("allow")).toBe("GET");
    expect(await res.json()).toMatchObject({ reason: "MALFORMED_REQUEST" });
  });
});
