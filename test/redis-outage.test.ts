import { setTimeout as sleep } from "node:timers/promises";
import { Code, ConnectError, createClient } from "@connectrpc/connect";
import { createConnectTransport, createGrpcTransport } from "@connectrpc/connect-node";
import { afterAll, beforeAll, expect, it } from "vitest";
import { AuthService } from "../gen/auth/v1/auth_pb.js";
import { type RunningApp, startApp } from "./support/app.js";
import { uniquePhone } from "./support/capture-sms.js";
import { describeWithRedis } from "./support/redis.js";
import { until } from "./support/wait.js";

// The service answers within ~1 s; the bound is generous for a loaded 2-core machine.
const FAST_MS = 2_500;

describeWithRedis(
  "when Redis goes away (fail closed, fail fast, recover)",
  (redis) => {
    let s: RunningApp;
    const unhandled: unknown[] = [];
    const onUnhandled = (reason: unknown) => unhandled.push(reason);
    beforeAll(async () => {
      process.on("unhandledRejection", onUnhandled);
      s = await startApp({ REDIS_URL: redis.url });
    });
    afterAll(async () => {
      process.off("unhandledRejection", onUnhandled);
      await s?.close();
    });

    const post = (path: string, body: unknown) =>
      fetch(`${s.baseUrl}${path}`, {
        method: "POST",
        headers: { "content-type": "application/json" },
        body: JSON.stringify(body),
      });
    const timed = async <T>(fn: () => Promise<T>): Promise<[T, number]> => {
      const t0 = performance.now();
      const value = await fn();
      return [value, performance.now() - t0];
    };
    const readyz = async () => {
      const res = await fetch(`${s.baseUrl}/readyz`);
      return { status: res.status, body: (await res.json()) as Record<string, unknown> };
    };
    const connectError = (p: Promise<unknown>) =>
      p.then(
        () => undefined,
        (e: unknown) => ConnectError.from(e),
      );

    const clients = () => ({
      connect: createClient(AuthService, createConnectTransport({ baseUrl: s.baseUrl, httpVersion: "1.1" })),
      grpc: createClient(AuthService, createGrpcTransport({ baseUrl: s.baseUrl })),
    });

    /** A login works end to end and /readyz says ready; returns a phone with a live code. */
    async function expectServing() {
      expect(await readyz()).toEqual({
        status: 200,
        body: { status: "ready", checks: { "shutting down": "ok", store: "ok" } },
      });
      const phone = uniquePhone();
      expect((await post("/api/v1/auth/send-otp", { phone })).status).toBe(200);
      return { phone, code: s.sms.lastCode(phone) };
    }

    /** Every protocol answers Unavailable quickly, and nothing is sent or issued. */
    async function expectFailsFast(phone: string, code: string) {
      const { connect, grpc } = clients();
      const smsBefore = s.sms.sent.length;
      // Several rounds: the first requests meet the dying connection, later ones the reconnect loop.
      for (let round = 0; round < 3; round++) {
        const [send, sendMs] = await timed(() => post("/api/v1/auth/send-otp", { phone: uniquePhone() }));
        expect(send.status).toBe(503);
        expect(((await send.json()) as { code: string }).code).toBe("unavailable");
        expect(sendMs).toBeLessThan(FAST_MS);

        const [verify, verifyMs] = await timed(() => post("/api/v1/auth/verify-otp", { phone, otp: code }));
        expect(verify.status).toBe(503);
        expect(verifyMs).toBeLessThan(FAST_MS);

        const [viaConnect, connectMs] = await timed(() =>
          connectError(connect.sendOtp({ phone: uniquePhone() })),
        );
        expect(viaConnect?.code).toBe(Code.Unavailable);
        expect(connectMs).toBeLessThan(FAST_MS);

        const [viaGrpc, grpcMs] = await timed(() => connectError(grpc.verifyOtp({ phone, otp: code })));
        expect(viaGrpc?.code).toBe(Code.Unavailable);
        expect(grpcMs).toBeLessThan(FAST_MS);

        const [ready, readyMs] = await timed(readyz);
        expect(ready.status).toBe(503);
        expect(ready.body).toMatchObject({
          status: "not ready",
          checks: { store: expect.not.stringMatching(/^ok$/) },
        });
        expect(readyMs).toBeLessThan(FAST_MS);
        await sleep(300);
      }
      // Fail closed: no code went out without the store.
      expect(s.sms.sent.length).toBe(smsBefore);
    }

    /** The service reconnects by itself: poll (with a deadline) until a login works end to end again. */
    async function expectRecovers() {
      const phone = uniquePhone();
      await until(async () => (await post("/api/v1/auth/send-otp", { phone })).status === 200, {
        what: "the service to recover after Redis came back",
        timeoutMs: 20_000,
        intervalMs: 100,
      });
      const verified = await post("/api/v1/auth/verify-otp", { phone, otp: s.sms.lastCode(phone) });
      expect(verified.status).toBe(200);
      expect((await clients().grpc.sendOtp({ phone: uniquePhone() })).message).toBe("OTP sent successfully");
      await expectServing();
      expect(unhandled).toEqual([]);
    }

    it("Redis stopped: 503 / Unavailable within a second, and serving again once it is back", async () => {
      const { phone, code } = await expectServing();
      await redis.stop();
      await expectFailsFast(phone, code);
      await redis.start();
      await expectRecovers();
    });

    it("Redis hung (connection open, no answers): the command timeout still answers within a second", async () => {
      const { phone, code } = await expectServing();
      redis.pause();
      try {
        await expectFailsFast(phone, code);
      } finally {
        redis.resume();
      }
      await expectRecovers();
    });
  },
  { outage: true },
);
