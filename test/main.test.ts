import { type ChildProcess, spawn } from "node:child_process";
import { once } from "node:events";
import { afterEach, describe, expect, it } from "vitest";
import { until } from "./support/wait.js";

const children: ChildProcess[] = [];
afterEach(() => {
  for (const c of children.splice(0)) c.kill("SIGKILL");
});

/** Starts src/main.ts as `npm start` would and collects its output. */
function startMain(env: Record<string, string>) {
  const child = spawn(process.execPath, ["--import", "tsx", "src/main.ts"], {
    env: { PATH: process.env.PATH, HOST: "127.0.0.1", ...env },
    stdio: ["ignore", "pipe", "pipe"],
  });
  children.push(child);
  let out = "";
  child.stdout?.on("data", (d: Buffer) => (out += d.toString()));
  child.stderr?.on("data", (d: Buffer) => (out += d.toString()));
  const waitFor = async (re: RegExp, ms = 20_000) => {
    await until(
      () => {
        if (re.test(out)) return true;
        if (child.exitCode !== null) throw new Error(`exited ${child.exitCode}: ${out}`);
        return false;
      },
      { what: () => `${re} in: ${out}`, timeoutMs: ms, intervalMs: 50 },
    );
    return out;
  };
  return { child, waitFor, output: () => out };
}

describe("main", () => {
  it("starts with nothing configured, says it is development mode, and logs in with the printed code", async () => {
    const m = startMain({ PORT: "0" });
    const out = await m.waitFor(/listening on http:\/\/127\.0\.0\.1:(\d+)/);
    expect(out).toMatch(/DEVELOPMENT MODE: no REDIS_URL/);
    expect(out).toMatch(/DEVELOPMENT MODE: SMS_PROVIDER=development/);
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

  it("refuses to start in production without Redis and a real SMS provider, naming the variables", async () => {
    const m = startMain({ NODE_ENV: "production" });
    const [code] = await once(m.child, "exit");
    expect(code).toBe(1);
    expect(m.output()).toMatch(/REDIS_URL is required/);
    expect(m.output()).toMatch(/SMS_PROVIDER is required/);
  });
});
