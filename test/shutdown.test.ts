import { type ChildProcess, spawn } from "node:child_process";
import { once } from "node:events";
import net from "node:net";
import { Code, ConnectError, createClient } from "@connectrpc/connect";
import {
  createConnectTransport,
  createGrpcTransport,
  createGrpcWebTransport,
} from "@connectrpc/connect-node";
import { status as GrpcStatus } from "@grpc/grpc-js";
import { pino } from "pino";
import { afterEach, describe, expect, it } from "vitest";
import { AuthService } from "../gen/auth/v1/auth_pb.js";
import { Health, HealthCheckResponse_ServingStatus as Status } from "../gen/grpc/health/v1/health_pb.js";
import { type App, buildApp } from "../src/app.js";
import { loadConfig } from "../src/config.js";
import { GENEROUS_LIMITS, GRPC_PATH_ENV } from "./support/app.js";
import { uniquePhone } from "./support/capture-sms.js";
import { GateSms } from "./support/gate-sms.js";
import { grpcJsClient } from "./support/grpc-client.js";
import { describeWithRedis } from "./support/redis.js";
import { until } from "./support/wait.js";

/** Whether a brand-new TCP connection to the port is refused. */
function refused(port: number): Promise<boolean> {
  return new Promise((resolve) => {
    const socket = net.connect(port, "127.0.0.1");
    socket.once("connect", () => {
      socket.destroy();
      resolve(false);
    });
    socket.once("error", (e: NodeJS.ErrnoException) => resolve(e.code === "ECONNREFUSED"));
  });
}

/** A Health.Watch on its own HTTP/2 connection, collecting statuses until the server ends it. */
function watchHealth(baseUrl: string) {
  const seen: Status[] = [];
  const done = (async () => {
    for await (const r of createClient(Health, createGrpcTransport({ baseUrl })).watch({ service: "" })) {
      seen.push(r.status);
    }
  })();
  return { seen, done };
}

describeWithRedis("graceful shutdown, in process (the function SIGTERM runs)", (redis) => {
  let app: App;
  let gate: GateSms;
  let port: number;
  let baseUrl: string;
  afterEach(async () => {
    gate?.open();
    await app?.close();
  });

  async function start() {
    gate = new GateSms();
    const config = loadConfig({
      NODE_ENV: "test",
      ...GENEROUS_LIMITS,
      ...GRPC_PATH_ENV,
      REDIS_URL: redis.url,
    });
    app = await buildApp(config, pino({ level: process.env.TEST_LOG_LEVEL ?? "silent" }), { sms: gate });
    port = (await app.server.listen(0, "127.0.0.1")).port;
    baseUrl = `http://127.0.0.1:${port}`;
    await until(() => app.redis?.status === "ready", { what: "redis to connect" });
  }

  /** One slow call per protocol and client, each on its own connection. */
  function slowCalls() {
    const send = (t: Parameters<typeof createClient>[1]) =>
      createClient(AuthService, t).sendOtp({ phone: uniquePhone() });
    const grpcJs = grpcJsClient(AuthService, `127.0.0.1:${port}`);
    const restPhone = uniquePhone();
    return {
      "REST over HTTP/1.1": fetch(`${baseUrl}/api/v1/auth/send-otp`, {
        method: "POST",
        headers: { "content-type": "application/json" },
        body: JSON.stringify({ phone: restPhone }),
      }).then(async (r) => ({ status: r.status, body: (await r.json()) as Record<string, unknown> })),
      "Connect over HTTP/1.1": send(createConnectTransport({ baseUrl, httpVersion: "1.1" })),
      "gRPC-Web over HTTP/1.1": send(createGrpcWebTransport({ baseUrl, httpVersion: "1.1" })),
      "gRPC over HTTP/2": send(createGrpcTransport({ baseUrl })),
      "Connect over HTTP/2": send(createConnectTransport({ baseUrl, httpVersion: "2" })),
      "@grpc/grpc-js": grpcJs
        .call(AuthService.method.sendOtp, { $typeName: "auth.v1.SendOtpRequest", phone: uniquePhone() })
        .finally(() => grpcJs.close()),
    };
  }

  it("lets in-flight calls on HTTP/1.1 and HTTP/2 finish, refuses new connections, goes NOT_SERVING", async () => {
    await start();
    const watch = watchHealth(baseUrl);
    await until(() => watch.seen.includes(Status.SERVING), { what: "health SERVING" });
    const calls = slowCalls();
    const n = Object.keys(calls).length;
    await until(() => gate.waiting === n, { what: `${n} calls waiting on the SMS provider` });

    const shutdown = app.shutdown(30_000);
    // Health says NOT_SERVING to the watcher, and the watch ends so it does not hold the drain.
    await watch.done;
    expect(watch.seen).toEqual([Status.SERVING, Status.NOT_SERVING]);
    expect(await refused(port)).toBe(true);
    expect(app.server.inFlight).toBe(n);

    gate.open();
    const results = await Promise.allSettled(Object.values(calls));
    const outcomes = Object.fromEntries(Object.keys(calls).map((k, i) => [k, results[i]?.status]));
    expect(outcomes).toEqual(Object.fromEntries(Object.keys(calls).map((k) => [k, "fulfilled"])));
    const rest = results[0]?.status === "fulfilled" ? results[0].value : undefined;
    expect(rest).toMatchObject({ status: 200, body: { message: "OTP sent successfully" } });

    expect(await shutdown).toMatchObject({ forced: 0 });
    expect(gate.sent).toHaveLength(n);
    // Redis is closed only after the last request is answered.
    await until(() => app.redis?.status === "end", { what: "redis to be closed" });
  });

  it("answers calls still running at the deadline with Unavailable, in each protocol", async () => {
    await start();
    const calls = slowCalls();
    const n = Object.keys(calls).length;
    await until(() => gate.waiting === n, { what: `${n} calls waiting on the SMS provider` });

    const settled = Promise.allSettled(Object.values(calls));
    const started = Date.now();
    const result = await app.shutdown(500);
    expect(result.forced).toBe(n);
    expect(Date.now() - started).toBeLessThan(10_000);

    const [rest, ...rpcs] = await settled;
    expect(rest?.status === "fulfilled" && rest.value).toMatchObject({
      status: 503,
      body: { code: "unavailable" },
    });
    for (const [name, r] of Object.keys(calls)
      .slice(1)
      .map((k, i) => [k, rpcs[i]] as const)) {
      expect(r?.status, name).toBe("rejected");
      if (r?.status !== "rejected") continue;
      const code =
        name === "@grpc/grpc-js" ? (r.reason as { code: number }).code : ConnectError.from(r.reason).code;
      expect(code, name).toBe(name === "@grpc/grpc-js" ? GrpcStatus.UNAVAILABLE : Code.Unavailable);
    }
    expect(await refused(port)).toBe(true);
  });
});

describe("SIGTERM on the real process", () => {
  let child: ChildProcess | undefined;
  afterEach(() => {
    child?.kill("SIGKILL");
  });

  it("goes NOT_SERVING, ends open streams, refuses new connections and exits 0", async () => {
    child = spawn(process.execPath, ["--import", "tsx", "src/main.ts"], {
      env: {
        PATH: process.env.PATH,
        HOST: "127.0.0.1",
        PORT: "0",
        SHUTDOWN_TIMEOUT_MS: "20000",
        ...GRPC_PATH_ENV,
      },
      stdio: ["ignore", "pipe", "pipe"],
    });
    let out = "";
    child.stdout?.on("data", (d: Buffer) => (out += d.toString()));
    child.stderr?.on("data", (d: Buffer) => (out += d.toString()));
    // "close", not "exit": the log is read after it, and its last lines may still be in the pipe at exit.
    const exited = once(child, "close");
    await until(() => /listening on http:\/\/127\.0\.0\.1:\d+/.test(out), {
      what: "the server to listen",
      timeoutMs: 20_000,
    });
    const port = Number(/listening on http:\/\/127\.0\.0\.1:(\d+)/.exec(out)?.[1]);
    const baseUrl = `http://127.0.0.1:${port}`;

    const watch = watchHealth(baseUrl);
    await until(() => watch.seen.includes(Status.SERVING), { what: "health SERVING" });
    child.kill("SIGTERM");
    await watch.done;
    expect(watch.seen).toEqual([Status.SERVING, Status.NOT_SERVING]);
    const [code] = await exited;
    expect(code).toBe(0);
    expect(out).toMatch(/"msg":"shut down"/);
    expect(await refused(port)).toBe(true);
  });
});
