import { pino } from "pino";
import { afterEach, describe, expect, it } from "vitest";
import { type App, buildApp } from "../src/app.js";
import { loadConfig } from "../src/config.js";
import { SmsError } from "../src/login/failures.js";
import { BoundedSmsSender } from "../src/sms/bounded.js";
import type { SmsLog } from "../src/sms/factory.js";
import { GENEROUS_LIMITS } from "./support/app.js";
import { uniquePhone } from "./support/capture-sms.js";
import { GateSms } from "./support/gate-sms.js";
import { until } from "./support/wait.js";

function recordingLog() {
  const lines: { level: string; msg: string; extra: object | undefined }[] = [];
  const log: SmsLog = {
    info: (msg, extra) => lines.push({ level: "info", msg, extra }),
    warn: (msg, extra) => lines.push({ level: "warn", msg, extra }),
    error: (msg, extra) => lines.push({ level: "error", msg, extra }),
  };
  return { log, lines };
}

const message = (to = uniquePhone()) => ({ to, text: "123456 is your code", code: "123456" });

describe("BoundedSmsSender", () => {
  it("lets SMS_MAX_IN_FLIGHT sends wait on the provider and refuses the next at once as provider_down", async () => {
    const gate = new GateSms();
    const { log } = recordingLog();
    const sms = new BoundedSmsSender(gate, log, { maxInFlight: 2 });
    expect(sms.name).toBe("gate");
    const held = [sms.send(message()), sms.send(message())];
    await until(() => gate.waiting === 2, { what: "two sends at the gate" });
    expect(sms.inFlight).toBe(2);

    const refused = await sms.send(message()).catch((e: unknown) => e);
    expect(refused).toBeInstanceOf(SmsError);
    expect(refused).toMatchObject({ kind: "provider_down", provider: "gate" });
    expect((refused as SmsError).detail).toMatch(/SMS_MAX_IN_FLIGHT/);
    expect(gate.waiting).toBe(2);
    expect(sms.refused).toBe(1);

    gate.open();
    await expect(Promise.all(held)).resolves.toHaveLength(2);
    expect(sms.inFlight).toBe(0);
    // The places are given back: sends go through again.
    await expect(sms.send(message())).resolves.toMatchObject({ provider: "gate" });
  });

  it("gives a place back when the provider fails, not only when it succeeds", async () => {
    const failing = {
      name: "down",
      send: () => Promise.reject(new SmsError("provider_down", "no", "down")),
    };
    const sms = new BoundedSmsSender(failing, recordingLog().log, { maxInFlight: 1 });
    for (let i = 0; i < 3; i++) await expect(sms.send(message())).rejects.toMatchObject({ provider: "down" });
    expect(sms.inFlight).toBe(0);
    expect(sms.refused).toBe(0);
  });

  it("logs the cap once per interval with the count refused, not once per request", async () => {
    const gate = new GateSms();
    const { log, lines } = recordingLog();
    let now = 1_000;
    const sms = new BoundedSmsSender(gate, log, { maxInFlight: 1, logEveryMs: 10_000, now: () => now });
    const held = sms.send(message());
    await until(() => gate.waiting === 1, { what: "one send at the gate" });
    for (let i = 0; i < 50; i++) await sms.send(message()).catch(() => {});
    expect(lines).toHaveLength(1);
    expect(lines[0]).toMatchObject({
      level: "error",
      msg: expect.stringMatching(/SMS_MAX_IN_FLIGHT/),
      extra: { maxInFlight: 1, refused: 1 },
    });
    now += 10_000;
    await sms.send(message()).catch(() => {});
    expect(lines).toHaveLength(2);
    expect(lines[1]?.extra).toMatchObject({ refused: 50, refusedTotal: 51 });
    gate.open();
    await held;
  });

  it("with 0 there is no cap", async () => {
    const gate = new GateSms();
    const sms = new BoundedSmsSender(gate, recordingLog().log, { maxInFlight: 0 });
    const held = Array.from({ length: 20 }, () => sms.send(message()));
    await until(() => gate.waiting === 20, { what: "twenty sends at the gate" });
    gate.open();
    await Promise.all(held);
    expect(sms.refused).toBe(0);
  });
});

describe("SMS_MAX_IN_FLIGHT in the service", () => {
  let app: App | undefined;
  let gate: GateSms | undefined;
  afterEach(async () => {
    gate?.open();
    await app?.close();
  });

  it("answers past the cap with 503 at once, leaves no live code and gives the send limit back", async () => {
    gate = new GateSms();
    const config = loadConfig({
      NODE_ENV: "test",
      ...GENEROUS_LIMITS,
      SMS_MAX_IN_FLIGHT: "2",
      // One code per phone per window: a send the cap refused must not have used it up.
      RATE_LIMIT_PHONE_SEND_POINTS: "1",
    });
    app = await buildApp(config, pino({ level: "silent" }), { sms: gate });
    const { port } = await app.server.listen(0, "127.0.0.1");
    const post = (path: string, body: unknown) =>
      fetch(`http://127.0.0.1:${port}${path}`, {
        method: "POST",
        headers: { "content-type": "application/json" },
        body: JSON.stringify(body),
      });

    const held = [
      post("/api/v1/auth/send-otp", { phone: uniquePhone() }),
      post("/api/v1/auth/send-otp", { phone: uniquePhone() }),
    ];
    await until(() => gate?.waiting === 2, { what: "two sends at the gate" });

    const phone = uniquePhone();
    const t0 = performance.now();
    const refused = await post("/api/v1/auth/send-otp", { phone });
    expect(performance.now() - t0).toBeLessThan(1_000);
    expect(refused.status).toBe(503);
    expect(await refused.json()).toMatchObject({ code: "unavailable", reason: "SMS_UNAVAILABLE" });

    const metrics = await (await fetch(`http://127.0.0.1:${port}/metrics`)).text();
    expect(metrics).toMatch(/^otp_auth_sms_in_flight 2$/m);
    expect(metrics).toMatch(/^otp_auth_sms_in_flight_refused_total 1$/m);
    expect(metrics).toMatch(/otp_auth_sms_sends_total\{provider="gate",outcome="provider_down"\} 1/);

    gate.open();
    expect((await Promise.all(held)).map((r) => r.status)).toEqual([200, 200]);
    // The refused send's code was discarded, and its phone's only send is still there to use.
    expect((await post("/api/v1/auth/send-otp", { phone })).status).toBe(200);
    expect(gate.sent.filter((m) => m.to === phone)).toHaveLength(1);
  });
});
