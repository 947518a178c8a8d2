import http from "node:http";
import http2 from "node:http2";
import { gzipSync } from "node:zlib";
import { create, toBinary } from "@bufbuild/protobuf";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { SendOtpRequestSchema } from "../gen/auth/v1/auth_pb.js";
import { type RunningApp, startApp } from "./support/app.js";

const SEND = "/auth.v1.AuthService/SendOtp";
const valid = toBinary(SendOtpRequestSchema, create(SendOtpRequestSchema, { phone: "+919876543210" }));
const truncated = valid.subarray(0, valid.length - 3);
const nested = new Uint8Array(150).fill(0x7b);

function envelope(flags: number, data: Uint8Array): Buffer {
  const head = Buffer.alloc(5);
  head.writeUInt8(flags, 0);
  head.writeUInt32BE(data.length, 1);
  return Buffer.concat([head, data]);
}

describe("a caller's malformed message is invalid_argument on every protocol, and counted", () => {
  let s: RunningApp;
  beforeAll(async () => {
    s = await startApp();
  });
  afterAll(() => s?.close());

  const post = async (path: string, headers: Record<string, string>, body: Uint8Array) => {
    const res = await fetch(`${s.baseUrl}${path}`, { method: "POST", headers, body });
    return { status: res.status, body: Buffer.from(await res.arrayBuffer()), headers: res.headers };
  };
  const grpc = (headers: Record<string, string>, body: Uint8Array) =>
    new Promise<string | undefined>((resolve, reject) => {
      const session = http2.connect(s.baseUrl);
      const stream = session.request({ ":method": "POST", ":path": SEND, ...headers });
      let status: string | undefined;
      stream.on("response", (h) => {
        status = h["grpc-status"] as string | undefined;
      });
      stream.on("trailers", (t) => {
        status = t["grpc-status"] as string | undefined;
      });
      stream.resume();
      stream.on("end", () => {
        session.close();
        resolve(status);
      });
      stream.on("error", reject);
      stream.end(body);
    });
  const metric = async (series: string) => {
    const text = await (await fetch(`${s.baseUrl}/metrics`)).text();
    const line = text.split("\n").find((l) => l.startsWith(`${series} `));
    return line ? Number(line.slice(series.length + 1)) : 0;
  };

  it("Connect binary: truncated, nested too deep, or a body that is not gzip -> 400 invalid_argument", async () => {
    for (const [headers, body] of [
      [{}, truncated],
      [{}, nested],
      [{ "content-encoding": "gzip" }, Buffer.from("not gzip at all")],
      [{ "content-encoding": "gzip" }, gzipSync(valid).subarray(0, 12)],
      [{ "content-encoding": "br" }, Buffer.from([0x1b, 0x59, 0, 0xf8, 0x25])],
      [{ "content-encoding": "gzip" }, gzipSync(truncated)],
    ] as const) {
      const res = await post(SEND, { "content-type": "application/proto", ...headers }, body);
      expect(res.status, res.body.toString()).toBe(400);
      expect(JSON.parse(res.body.toString()).code).toBe("invalid_argument");
    }
    expect(
      await metric(`otp_auth_requests_total{procedure="${SEND}",protocol="connect",code="invalid_argument"}`),
    ).toBe(6);
  });

  it("gRPC and gRPC-Web: a truncated or too deep message -> status 3, counted", async () => {
    expect(await grpc({ "content-type": "application/grpc" }, envelope(0, truncated))).toBe("3");
    expect(await grpc({ "content-type": "application/grpc" }, envelope(0, nested))).toBe("3");
    expect(
      await grpc(
        { "content-type": "application/grpc", "grpc-encoding": "gzip" },
        envelope(1, gzipSync(nested)),
      ),
    ).toBe("3");
    const web = await post(SEND, { "content-type": "application/grpc-web+proto" }, envelope(0, truncated));
    expect(web.status).toBe(200);
    expect(web.body.toString("latin1")).toMatch(/grpc-status: ?3\r\n/);
    expect(
      await metric(`otp_auth_requests_total{procedure="${SEND}",protocol="grpc",code="invalid_argument"}`),
    ).toBe(3);
    expect(
      await metric(
        `otp_auth_requests_total{procedure="${SEND}",protocol="grpc_web",code="invalid_argument"}`,
      ),
    ).toBe(1);
  });

  it("keeps what the specs mandate: unknown encoding unimplemented, compressed flag without one internal", async () => {
    expect(
      await grpc({ "content-type": "application/grpc", "grpc-encoding": "zstd" }, envelope(1, valid)),
    ).toBe("12");
    expect(await grpc({ "content-type": "application/grpc" }, envelope(1, valid))).toBe("13");
    const res = await post(SEND, { "content-type": "application/proto", "content-encoding": "zstd" }, valid);
    expect(res.status).toBe(501);
  });

  it("counts refusals before routing under the path, and unknown RPC paths under 'unknown'", async () => {
    const before = await metric(
      `otp_auth_requests_total{procedure="${SEND}",protocol="connect",code="invalid_argument"}`,
    );
    expect((await post(SEND, { "content-type": "text/plain" }, valid)).status).toBe(415);
    expect(
      await metric(`otp_auth_requests_total{procedure="${SEND}",protocol="connect",code="invalid_argument"}`),
    ).toBe(before + 1);
    expect(
      (await post("/auth.v1.AuthService/Nope", { "content-type": "application/proto" }, valid)).status,
    ).toBe(404);
    expect(
      await metric('otp_auth_requests_total{procedure="unknown",protocol="connect",code="unimplemented"}'),
    ).toBe(1);
  });

  it("a REST client hanging up mid-upload is canceled, not internal", async () => {
    await new Promise<void>((resolve) => {
      const req = http.request({
        host: "127.0.0.1",
        port: s.port,
        method: "POST",
        path: "/api/v1/auth/send-otp",
        headers: { "content-type": "application/json", "content-length": "100" },
      });
      req.on("error", () => resolve());
      req.write('{"phone":');
      setTimeout(() => req.destroy(), 50);
    });
    const series = 'otp_auth_requests_total{procedure="/api/v1/auth/send-otp",protocol="rest",code=';
    for (let i = 0; i < 50 && (await metric(`${series}"canceled"}`)) === 0; i++) {
      await new Promise((r) => setTimeout(r, 20));
    }
    expect(await metric(`${series}"canceled"}`)).toBe(1);
    expect(await metric(`${series}"internal"}`)).toBe(0);
  });
});
