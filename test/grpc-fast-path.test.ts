import http2 from "node:http2";
import { create, toBinary } from "@bufbuild/protobuf";
import { createClient } from "@connectrpc/connect";
import { compressionGzip, createGrpcTransport } from "@connectrpc/connect-node";
import type * as grpc from "@grpc/grpc-js";
import { pino } from "pino";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { AuthService, SendOtpRequestSchema } from "../gen/auth/v1/auth_pb.js";
import { Health, HealthCheckResponse_ServingStatus as Status } from "../gen/grpc/health/v1/health_pb.js";
import { type App, buildApp } from "../src/app.js";
import { loadConfig } from "../src/config.js";
import { encodeGrpcMessage } from "../src/http/grpc-message.js";
import { GENEROUS_LIMITS, type RunningApp, startApp } from "./support/app.js";
import { uniquePhone } from "./support/capture-sms.js";
import { GateSms } from "./support/gate-sms.js";
import { grpcJsClient } from "./support/grpc-client.js";
import { until } from "./support/wait.js";

/*
 * The fast path itself: that it is what answers when on (and connect-node when off), what only it does (the
 * server's own grpc-timeout, a reset call never reaching the login core, spec-encoded grpc-message), and that
 * what it does not take still reaches connect-node. Equivalence with connect-node is the gRPC suites' job: they
 * run on both paths (vitest.config.ts).
 */

const SEND = "/auth.v1.AuthService/SendOtp";

function envelope(message: Uint8Array): Buffer {
  const head = Buffer.alloc(5);
  head.writeUInt32BE(message.byteLength, 1);
  return Buffer.concat([head, message]);
}

const sendBody = (phone: string) =>
  envelope(toBinary(SendOtpRequestSchema, create(SendOtpRequestSchema, { phone })));

interface RawAnswer {
  readonly headers: http2.IncomingHttpHeaders;
  readonly trailers: http2.IncomingHttpHeaders | undefined;
  readonly ms: number;
}

/** One gRPC call over a fresh HTTP/2 session, with the headers and trailers as they came. */
function raw(baseUrl: string, headers: Record<string, string>, body: Buffer): Promise<RawAnswer> {
  const started = performance.now();
  return new Promise((resolve, reject) => {
    const session = http2.connect(baseUrl);
    const stream = session.request({
      ":method": "POST",
      ":path": SEND,
      "content-type": "application/grpc",
      te: "trailers",
      ...headers,
    });
    let head: http2.IncomingHttpHeaders = {};
    let trailers: http2.IncomingHttpHeaders | undefined;
    stream.on("response", (h) => {
      head = h;
    });
    stream.on("trailers", (t) => {
      trailers = t;
    });
    stream.resume();
    stream.on("close", () => {
      session.close();
      resolve({ headers: head, trailers, ms: performance.now() - started });
    });
    stream.on("error", reject);
    stream.end(body);
  });
}

describe("which path answers", () => {
  const apps: RunningApp[] = [];
  afterAll(() => Promise.all(apps.map((a) => a.close())));

  it("on (the default): errors are trailers-only and grpc-message is spec-encoded", async () => {
    const s = await startApp({ GRPC_FAST_PATH: "true" });
    apps.push(s);
    const a = await raw(s.baseUrl, { "x-request-id": "fast-1" }, sendBody("12"));
    expect(a.trailers).toBeUndefined();
    expect(a.headers).toMatchObject({
      ":status": 200,
      "content-type": "application/grpc+proto",
      "grpc-status": "3",
      "x-error-reason": "INVALID_PHONE",
      "x-request-id": "fast-1",
      "grpc-message": 'phone "12" is not a valid number for IN; use E.164 such as +919876543210',
    });
    expect(a.headers["grpc-status-details-bin"]).toBeTruthy();

    const g = grpcJsClient(AuthService, `127.0.0.1:${s.port}`);
    try {
      const err = (await g
        .call(AuthService.method.sendOtp, create(SendOtpRequestSchema, { phone: "12" }))
        .catch((e: unknown) => e)) as grpc.ServiceError;
      expect(err.details).toBe('phone "12" is not a valid number for IN; use E.164 such as +919876543210');
    } finally {
      g.close();
    }

    // The largest grpc-timeout (about 11 000 years) is no deadline, not one that a timer cuts to 1 ms.
    const ok = await raw(s.baseUrl, { "grpc-timeout": "99999999H" }, sendBody(uniquePhone()));
    expect(ok.headers).toMatchObject({ ":status": 200, "content-type": "application/grpc+proto" });
    expect(ok.headers["x-request-id"]).toMatch(/^[0-9a-f-]{36}$/);
    expect(ok.trailers).toEqual(expect.objectContaining({ "grpc-status": "0" }));
  });

  it("GRPC_FAST_PATH=false: connect-node answers (headers, then the status in trailers)", async () => {
    const s = await startApp({ GRPC_FAST_PATH: "false" });
    apps.push(s);
    const a = await raw(s.baseUrl, {}, sendBody("12"));
    expect(a.headers["grpc-status"]).toBeUndefined();
    expect(a.trailers).toMatchObject({ "grpc-status": "3", "x-error-reason": "INVALID_PHONE" });
  });

  it("leaves to connect-node what it does not take: gzip, JSON, health, other paths", async () => {
    const s = await startApp({ GRPC_FAST_PATH: "true" });
    apps.push(s);
    const gzip = createClient(
      AuthService,
      createGrpcTransport({ baseUrl: s.baseUrl, sendCompression: compressionGzip, compressMinBytes: 1 }),
    );
    const phone = uniquePhone();
    expect((await gzip.sendOtp({ phone })).phone).toBe(phone);
    const json = createClient(
      AuthService,
      createGrpcTransport({ baseUrl: s.baseUrl, useBinaryFormat: false }),
    );
    expect((await json.sendOtp({ phone: uniquePhone() })).codeLength).toBe(6);
    const health = createClient(Health, createGrpcTransport({ baseUrl: s.baseUrl }));
    expect((await health.check({ service: "auth.v1.AuthService" })).status).toBe(Status.SERVING);
    // A malformed grpc-timeout is refused by connect-node, in its words (trailers, not trailers-only).
    const badTimeout = await raw(s.baseUrl, { "grpc-timeout": "soon" }, sendBody(uniquePhone()));
    expect(badTimeout.trailers).toMatchObject({ "grpc-status": "3" });
  });
});

describe("deadlines and resets on the fast path", () => {
  let app: App;
  let gate: GateSms;
  let baseUrl: string;
  beforeAll(async () => {
    gate = new GateSms();
    const config = loadConfig({ NODE_ENV: "test", ...GENEROUS_LIMITS, GRPC_FAST_PATH: "true" });
    app = await buildApp(config, pino({ level: process.env.TEST_LOG_LEVEL ?? "silent" }), { sms: gate });
    baseUrl = `http://127.0.0.1:${(await app.server.listen(0, "127.0.0.1")).port}`;
  });
  afterAll(async () => {
    gate?.open();
    await app?.close();
  });

  const metric = async (code: string) => {
    const text = await (await fetch(`${baseUrl}/metrics`)).text();
    const series = `otp_auth_requests_total{procedure="${SEND}",protocol="grpc",code="${code}"}`;
    const line = text.split("\n").find((l) => l.startsWith(`${series} `));
    return line ? Number(line.slice(series.length + 1)) : 0;
  };

  it("answers deadline_exceeded itself when grpc-timeout passes, even to a client that would wait", async () => {
    const a = await raw(baseUrl, { "grpc-timeout": "200m" }, sendBody(uniquePhone()));
    expect(a.headers["grpc-status"]).toBe("4");
    expect(a.ms).toBeLessThan(5_000);
    expect(await metric("deadline_exceeded")).toBe(1);
    expect(app.server.inFlight).toBe(0);
  });

  it("a call cut off before its message arrived never reaches the login core, and is counted canceled", async () => {
    // The gate stays shut through these tests: a send that reached it is waiting there.
    const held = gate.waiting;
    const session = http2.connect(baseUrl);
    const stream = session.request({ ":method": "POST", ":path": SEND, "content-type": "application/grpc" });
    stream.on("error", () => {});
    stream.write(sendBody(uniquePhone()).subarray(0, 8));
    await until(() => app.server.inFlight === 1, { what: "the call to arrive" });
    // Not stream.close(): Node's client would end the body (END_STREAM) before its RST_STREAM.
    session.destroy();
    await until(async () => (await metric("canceled")) === 1, { what: "the cut-off call to be counted" });
    expect(gate.waiting).toBe(held);
    await until(() => app.server.inFlight === 0, { what: "the call to leave the in-flight set" });
  });

  it("a call canceled while the login core works is dropped and counted canceled at once", async () => {
    const g = grpcJsClient(AuthService, baseUrl.slice("http://".length));
    try {
      const call = g.client.makeUnaryRequest(
        SEND,
        (v: Buffer) => v,
        (b: Buffer) => b,
        sendBody(uniquePhone()).subarray(5),
        () => {},
      );
      const held = gate.waiting;
      await until(() => gate.waiting === held + 1, { what: "the send to reach the provider" });
      call.cancel();
      await until(async () => (await metric("canceled")) === 2, { what: "the cancel to be counted" });
      await until(() => app.server.inFlight === 0, { what: "the call to leave the in-flight set" });
      gate.open();
      await until(() => gate.waiting === 0, { what: "the held sends to finish" });
      // The login core's answer came after the cancel: dropped, not counted a second time.
      expect(await metric("ok")).toBe(0);
    } finally {
      g.close();
    }
  });
});

describe("encodeGrpcMessage, as the fast path sends it", () => {
  it("keeps printable ASCII, escapes '%', controls and non-ASCII bytes", () => {
    expect(encodeGrpcMessage("try again in 3 seconds; use +91")).toBe("try again in 3 seconds; use +91");
    expect(encodeGrpcMessage("100% done\n")).toBe("100%25 done%0A");
    expect(encodeGrpcMessage("café")).toBe("caf%C3%A9");
    expect(decodeURIComponent(encodeGrpcMessage("a%b ☃\t"))).toBe("a%b ☃\t");
  });
});
