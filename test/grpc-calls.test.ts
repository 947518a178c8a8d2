import http2 from "node:http2";
import { create, toBinary } from "@bufbuild/protobuf";
import { Code, ConnectError, createClient } from "@connectrpc/connect";
import { createGrpcTransport } from "@connectrpc/connect-node";
import * as grpc from "@grpc/grpc-js";
import { pino } from "pino";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import {
  AuthService,
  LogoutRequestSchema,
  RefreshTokenRequestSchema,
  SendOtpRequestSchema,
  VerifyOtpRequestSchema,
} from "../gen/auth/v1/auth_pb.js";
import { ErrorInfoSchema, RetryInfoSchema } from "../gen/google/rpc/error_details_pb.js";
import { type App, buildApp } from "../src/app.js";
import { loadConfig } from "../src/config.js";
import { GENEROUS_LIMITS, GRPC_PATH_ENV, type RunningApp, startApp } from "./support/app.js";
import { uniquePhone } from "./support/capture-sms.js";
import { GateSms } from "./support/gate-sms.js";
import { grpcJsClient } from "./support/grpc-client.js";
import { until } from "./support/wait.js";

/*
 * What a gRPC caller sees, whichever path serves it (run with the fast path and, in the second vitest project,
 * through connect-node alone): metadata, request ids, error details, limits, deadlines, every AuthService call.
 */

type GrpcError = grpc.ServiceError;
const SEND = "/auth.v1.AuthService/SendOtp";

describe("gRPC callers get the same answers on either path", () => {
  let s: RunningApp;
  let g: ReturnType<typeof grpcJsClient<typeof AuthService>>;
  beforeAll(async () => {
    s = await startApp({ RATE_LIMIT_PHONE_COOLDOWN_SECONDS: "60" });
    g = grpcJsClient(AuthService, `127.0.0.1:${s.port}`);
  });
  afterAll(async () => {
    g?.close();
    await s?.close();
  });

  const metric = async (series: string) => {
    const text = await (await fetch(`${s.baseUrl}/metrics`)).text();
    const line = text.split("\n").find((l) => l.startsWith(`${series} `));
    return line ? Number(line.slice(series.length + 1)) : 0;
  };

  it("every AuthService call through grpc-js, with the request id echoed in the response metadata", async () => {
    const phone = uniquePhone();
    const meta = new grpc.Metadata();
    meta.set("x-request-id", "grpc-calls-1");
    let echoed: string | undefined;
    const sent = await new Promise((resolve, reject) => {
      const call = g.client.makeUnaryRequest(
        SEND,
        (v: Buffer) => v,
        (b: Buffer) => b,
        Buffer.from(toBinary(SendOtpRequestSchema, create(SendOtpRequestSchema, { phone }))),
        meta,
        (err, res) => (err ? reject(err) : resolve(res)),
      );
      call.on("metadata", (m) => {
        echoed = String(m.get("x-request-id")[0]);
      });
    });
    expect(sent).toBeInstanceOf(Buffer);
    expect(echoed).toBe("grpc-calls-1");
    const session = await g.call(
      AuthService.method.verifyOtp,
      create(VerifyOtpRequestSchema, { phone, otp: s.sms.lastCode(phone) }),
    );
    expect(session).toMatchObject({ tokenType: "bearer", user: { phone, role: "consumer" } });
    expect(session.user?.id).toBeGreaterThan(0n);
    const pair = await g.call(
      AuthService.method.refreshToken,
      create(RefreshTokenRequestSchema, { refreshToken: session.refreshToken }),
    );
    expect(pair.refreshToken).not.toBe(session.refreshToken);
    expect(
      await g.call(
        AuthService.method.logout,
        create(LogoutRequestSchema, { refreshToken: pair.refreshToken }),
      ),
    ).toEqual(expect.objectContaining({ $typeName: "auth.v1.LogoutResponse" }));
    const gone = (await g
      .call(
        AuthService.method.refreshToken,
        create(RefreshTokenRequestSchema, { refreshToken: pair.refreshToken }),
      )
      .catch((e: unknown) => e)) as GrpcError;
    expect(gone.code).toBe(grpc.status.UNAUTHENTICATED);
    expect(gone.metadata.get("x-error-reason")).toEqual(["REFRESH_TOKEN_INVALID"]);
  });

  it("a refusal carries ErrorInfo and RetryInfo in grpc-status-details-bin, x-error-reason and retry-after", async () => {
    const phone = uniquePhone();
    await g.call(AuthService.method.sendOtp, create(SendOtpRequestSchema, { phone }));
    const meta = new grpc.Metadata();
    meta.set("x-request-id", "limited-2");
    // The request id is response metadata: in the headers before the trailers, or in a trailers-only answer.
    const ids: unknown[] = [];
    const err = await new Promise<GrpcError>((resolve, reject) => {
      const call = g.client.makeUnaryRequest(
        SEND,
        (v: Buffer) => v,
        (b: Buffer) => b,
        Buffer.from(toBinary(SendOtpRequestSchema, create(SendOtpRequestSchema, { phone }))),
        meta,
        (e) => (e ? resolve(e) : reject(new Error("expected a refusal"))),
      );
      call.on("metadata", (m) => ids.push(...m.get("x-request-id")));
    });
    ids.push(...err.metadata.get("x-request-id"));
    expect(err.code).toBe(grpc.status.RESOURCE_EXHAUSTED);
    // connect-node escapes grpc-message as encodeURIComponent does, which grpc-js (decodeURI) leaves
    // half-decoded ("%3B"); the fast path encodes as the gRPC spec says (test/grpc-fast-path.test.ts).
    expect(decodeURIComponent(err.details)).toMatch(
      /^a code was just sent to this phone; try again in \d+ seconds$/,
    );
    expect(err.metadata.get("x-error-reason")).toEqual(["OTP_COOLDOWN"]);
    expect(Number(err.metadata.get("retry-after")[0])).toBeGreaterThanOrEqual(1);
    expect(ids).toContain("limited-2");
    const [bin] = err.metadata.get("grpc-status-details-bin");
    expect(bin).toBeInstanceOf(Buffer);
    // The same bytes a Connect client reads its details from.
    const ce = await createClient(AuthService, createGrpcTransport({ baseUrl: s.baseUrl }))
      .sendOtp({ phone })
      .catch((e: unknown) => ConnectError.from(e));
    expect(ce).toBeInstanceOf(ConnectError);
    if (!(ce instanceof ConnectError)) return;
    expect(ce.code).toBe(Code.ResourceExhausted);
    expect(ce.findDetails(ErrorInfoSchema)[0]).toMatchObject({
      reason: "OTP_COOLDOWN",
      domain: "otp-auth",
    });
    expect(ce.findDetails(RetryInfoSchema)[0]?.retryDelay?.seconds).toBeGreaterThanOrEqual(1n);
  });

  it("an oversized message is resource_exhausted, an unknown method unimplemented, each counted", async () => {
    const big = (await g
      .call(AuthService.method.sendOtp, create(SendOtpRequestSchema, { phone: "9".repeat(70_000) }))
      .catch((e: unknown) => e)) as GrpcError;
    expect(big.code).toBe(grpc.status.RESOURCE_EXHAUSTED);
    expect(big.details).toMatch(/larger than configured readMaxBytes 65536/);
    expect(
      await metric(
        'otp_auth_requests_total{procedure="/auth.v1.AuthService/SendOtp",protocol="grpc",code="resource_exhausted"}',
      ),
    ).toBeGreaterThanOrEqual(1);
    const unknown = await new Promise<GrpcError | null>((resolve) => {
      g.client.makeUnaryRequest(
        "/auth.v1.AuthService/Nope",
        (v: Buffer) => v,
        (b: Buffer) => b,
        Buffer.alloc(0),
        (err) => resolve(err),
      );
    });
    expect(unknown?.code).toBe(grpc.status.UNIMPLEMENTED);
  });

  it("counts gRPC calls under the same procedure, protocol and code labels", async () => {
    const series = (code: string) =>
      `otp_auth_requests_total{procedure="/auth.v1.AuthService/VerifyOtp",protocol="grpc",code="${code}"}`;
    const [ok, refused] = [await metric(series("ok")), await metric(series("unauthenticated"))];
    const phone = uniquePhone();
    await g.call(AuthService.method.sendOtp, create(SendOtpRequestSchema, { phone }));
    const code = s.sms.lastCode(phone);
    await g
      .call(
        AuthService.method.verifyOtp,
        create(VerifyOtpRequestSchema, { phone, otp: code === "000000" ? "111111" : "000000" }),
      )
      .catch(() => {});
    await g.call(AuthService.method.verifyOtp, create(VerifyOtpRequestSchema, { phone, otp: code }));
    expect(await metric(series("ok"))).toBe(ok + 1);
    expect(await metric(series("unauthenticated"))).toBe(refused + 1);
    expect(
      await metric(
        'otp_auth_request_duration_seconds_count{procedure="/auth.v1.AuthService/VerifyOtp",protocol="grpc"}',
      ),
    ).toBe(ok + refused + 2);
  });
});

describe("deadlines and cancellation (a slow SMS provider)", () => {
  let app: App;
  let gate: GateSms;
  let port: number;
  beforeAll(async () => {
    gate = new GateSms();
    const config = loadConfig({ NODE_ENV: "test", ...GENEROUS_LIMITS, ...GRPC_PATH_ENV });
    app = await buildApp(config, pino({ level: process.env.TEST_LOG_LEVEL ?? "silent" }), { sms: gate });
    port = (await app.server.listen(0, "127.0.0.1")).port;
  });
  afterAll(async () => {
    gate?.open();
    await app?.close();
  });

  it("a call past its deadline is deadline_exceeded, for grpc-js and Connect's gRPC transport", async () => {
    const g = grpcJsClient(AuthService, `127.0.0.1:${port}`);
    try {
      const err = await new Promise<GrpcError | null>((resolve) => {
        g.client.makeUnaryRequest(
          SEND,
          (v: Buffer) => v,
          (b: Buffer) => b,
          Buffer.from(toBinary(SendOtpRequestSchema, create(SendOtpRequestSchema, { phone: uniquePhone() }))),
          new grpc.Metadata(),
          { deadline: Date.now() + 300 },
          (e) => resolve(e),
        );
      });
      expect(err?.code).toBe(grpc.status.DEADLINE_EXCEEDED);
    } finally {
      g.close();
    }
    const connect = createClient(AuthService, createGrpcTransport({ baseUrl: `http://127.0.0.1:${port}` }));
    const ce = await connect
      .sendOtp({ phone: uniquePhone() }, { timeoutMs: 300 })
      .catch((e: unknown) => ConnectError.from(e));
    expect(ce instanceof ConnectError && ce.code).toBe(Code.DeadlineExceeded);
    // The calls held at the gate go on once it opens, and the server stays healthy.
    await until(() => gate.waiting === 2, { what: "both sends to reach the provider" });
    gate.open();
    await until(() => gate.waiting === 0, { what: "the held sends to finish" });
    expect((await connect.sendOtp({ phone: uniquePhone() })).codeLength).toBe(6);
  });

  it("a raw HTTP/2 call that the client resets is answered by nobody and leaves the server serving", async () => {
    const session = http2.connect(`http://127.0.0.1:${port}`);
    try {
      const stream = session.request({
        ":method": "POST",
        ":path": "/auth.v1.AuthService/SendOtp",
        "content-type": "application/grpc",
        te: "trailers",
      });
      const closed = new Promise((r) => stream.once("close", r));
      stream.on("error", () => {});
      stream.write(Buffer.from([0, 0, 0, 0, 20]));
      await new Promise((r) => setTimeout(r, 50));
      stream.close(http2.constants.NGHTTP2_CANCEL);
      await closed;
    } finally {
      session.close();
    }
    await until(() => app.server.inFlight === 0, { what: "the reset call to leave the in-flight set" });
  });
});
