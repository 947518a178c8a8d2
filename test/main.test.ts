import { once } from "node:events";
import { type AddressInfo, createServer } from "node:net";
import { afterEach, describe, expect, it } from "vitest";
import { type MainProcess, startMain as start } from "./support/main-process.js";

const children: MainProcess[] = [];
afterEach(async () => {
  await Promise.all(children.splice(0).map((c) => c.stop()));
});

/** Starts src/main.ts as `npm start` would and collects its output. */
function startMain(env: Record<string, string>) {
  const m = start(env);
  children.push(m);
  return m;
}

describe("main", () => {
  it("starts with nothing configured, says it is development mode, and logs in with the printed code", async () => {
    const m = startMain({ PORT: "0" });
    const out = await m.waitFor(/listening on http:\/\/127\.0\.0\.1:(\d+)/);
    expect(out).toMatch(/DEVELOPMENT MODE: no REDIS_URL/);
    expect(out).toMatch(/DEVELOPMENT MODE: SMS_PROVIDER=development/);
    // One line says who skips which limits, and what stays on.
    expect(out).toMatch(
      /callers on this machine \(127\.0\.0\.0\/8, ::1\) skip the per-IP and per-phone limits/,
    );
    const port = /listening on http:\/\/127\.0\.0\.1:(\d+)/.exec(out)?.[1];
    const base = `http://127.0.0.1:${port}`;
    const post = (path: string, body: unknown) =>
      fetch(`${base}${path}`, {
        method: "POST",
        headers: { "content-type": "application/json" },
        body: JSON.stringify(body),
      });

    expect((await post("/api/v1/auth/send-otp", { phone: "+919876543210" })).status).toBe(200);
    const line = await m.waitFor(/OTP for \+919876543210: (\d{6})/);
    const otp = /OTP for \+919876543210: (\d{6})/.exec(line)?.[1];
    const res = await post("/api/v1/auth/verify-otp", { phone: "+919876543210", otp });
    expect(res.status).toBe(200);
    expect(((await res.json()) as { user: unknown }).user).toEqual({
      id: 1,
      phone: "+919876543210",
      name: "User 3210",
      role: "consumer",
      is_phone_verified: true,
    });

    m.child.kill("SIGTERM");
    const [code] = await once(m.child, "exit");
    expect(code).toBe(0);
  });

  it("serves /metrics only on METRICS_PORT, and closes that listener on SIGTERM", async () => {
    const m = startMain({ PORT: "0", METRICS_PORT: "0" });
    const out = await m.waitFor(/metrics on http:\/\/127\.0\.0\.1:(\d+)\/metrics/);
    const api = /listening on http:\/\/127\.0\.0\.1:(\d+)/.exec(out)?.[1];
    const metricsUrl = /metrics on (http:\/\/127\.0\.0\.1:\d+\/metrics)/.exec(out)?.[1] ?? "";
    expect((await fetch(metricsUrl)).status).toBe(200);
    expect((await fetch(`http://127.0.0.1:${api}/metrics`)).status).toBe(404);

    m.child.kill("SIGTERM");
    const [code] = await once(m.child, "exit");
    expect(code).toBe(0);
    await expect(fetch(metricsUrl)).rejects.toThrow();
  });

  it("names PORT in one line, with no stack trace, when the port is taken", async () => {
    const taken = createServer();
    await new Promise<void>((r) => taken.listen(0, "127.0.0.1", r));
    const { port } = taken.address() as AddressInfo;
    try {
      const m = startMain({ PORT: String(port) });
      // "close", not "exit": the output is read next, and its last lines may still be in the pipe at exit.
      const [code] = await once(m.child, "close");
      expect(code).not.toBe(0);
      const complaint = m
        .output()
        .split("\n")
        .filter((l) => l.startsWith("otp-auth: "));
      expect(complaint).toEqual([
        `otp-auth: cannot start, port ${port} on 127.0.0.1 is already in use (PORT=${port}): stop what is listening there, or set PORT to a free port`,
      ]);
      expect(m.output()).not.toMatch(/\n\s+at /);
    } finally {
      taken.close();
    }
  });

  it("refuses to start in production without Redis and a real SMS provider, naming the variables", async () => {
    const m = startMain({ NODE_ENV: "production" });
    const [code] = await once(m.child, "close");
    expect(code).toBe(1);
    expect(m.output()).toMatch(/REDIS_URL is required/);
    expect(m.output()).toMatch(/SMS_PROVIDER is required/);
  });
});
