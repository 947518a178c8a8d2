import { describe, expect, it } from "vitest";
import { loadConfig } from "../src/config.js";
import { requestIdOf } from "../src/http/request-id.js";
import { Readiness } from "../src/ops/readiness.js";

describe("Readiness", () => {
  it("is ready when every check passes, and names the ones that do not", async () => {
    const r = new Readiness().add({ name: "store", probe: async () => {} });
    expect(await r.report()).toEqual({ ready: true, checks: { "shutting down": "ok", store: "ok" } });
    r.add({
      name: "sms",
      probe: async () => {
        throw new Error("provider down");
      },
    });
    expect(await r.report()).toEqual({
      ready: false,
      checks: { "shutting down": "ok", store: "ok", sms: "provider down" },
    });
  });

  it("counts a probe that hangs as failed after its timeout", async () => {
    const r = new Readiness(50).add({ name: "store", probe: () => new Promise(() => {}) });
    const started = Date.now();
    const report = await r.report();
    expect(report.ready).toBe(false);
    expect(report.checks.store).toMatch(/no answer within 50 ms/);
    expect(Date.now() - started).toBeLessThan(5_000);
  });

  it("is never ready again once shutdown begins, and wakes watchers at once", async () => {
    const r = new Readiness().add({ name: "store", probe: async () => {} });
    const waiting = r.changedOrAfter(60_000, new AbortController().signal);
    r.beginShutdown();
    await waiting; // would time out the test if shutdown did not wake it
    expect(await r.report()).toEqual({
      ready: false,
      checks: { "shutting down": "shutting down", store: "ok" },
    });
  });
});

describe("request ids", () => {
  it("keeps a caller's sane id and replaces anything that could forge a log line", () => {
    expect(requestIdOf("abc-123_x.y:z")).toBe("abc-123_x.y:z");
    for (const bad of [undefined, "", "a b", "x\ny", "é", "a".repeat(129), ["a", "b"]]) {
      expect(requestIdOf(bad)).toMatch(/^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/);
    }
  });
});

describe("operability configuration", () => {
  it("defaults: metrics on, 10 s shutdown, info in production and debug otherwise", () => {
    const dev = loadConfig({});
    expect([dev.metricsEnabled, dev.shutdownTimeoutMs, dev.logLevel]).toEqual([true, 10_000, "debug"]);
    const set = loadConfig({ METRICS_ENABLED: "false", SHUTDOWN_TIMEOUT_MS: "2500", LOG_LEVEL: "warn" });
    expect([set.metricsEnabled, set.shutdownTimeoutMs, set.logLevel]).toEqual([false, 2500, "warn"]);
  });

  it("names each bad value", () => {
    let message = "";
    try {
      loadConfig({ METRICS_ENABLED: "maybe", SHUTDOWN_TIMEOUT_MS: "soon", LOG_LEVEL: "loud" });
    } catch (e) {
      message = String(e);
    }
    expect(message).toMatch(/METRICS_ENABLED must be true or false, got "maybe"/);
    expect(message).toMatch(/SHUTDOWN_TIMEOUT_MS must be a whole number, got "soon"/);
    expect(message).toMatch(
      /LOG_LEVEL must be one of fatal, error, warn, info, debug, trace, silent, got "loud"/,
    );
  });
});
