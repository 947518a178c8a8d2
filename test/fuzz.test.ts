import http from "node:http";
import http2 from "node:http2";
import { createClient } from "@connectrpc/connect";
import { createConnectTransport } from "@connectrpc/connect-node";
import fc from "fast-check";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { AuthService } from "../gen/auth/v1/auth_pb.js";
import { type RunningApp, startApp } from "./support/app.js";
import { uniquePhone } from "./support/capture-sms.js";
import {
  connectUnary,
  enveloped,
  type FuzzRequest,
  jsonBody,
  protoBody,
  restRequest,
} from "./support/fuzz-arbitraries.js";

/*
 * Malformed requests on every protocol, against the real server: none may answer 5xx (or grpc-status 13/2)
 * unless a spec says so, and the server must still log someone in afterwards. FUZZ_RUNS scales the requests per
 * protocol (default 2,000); FUZZ_SEED replays a failure (fast-check prints the seed and the shrunk request).
 */
const REQUESTS = Number(process.env.FUZZ_RUNS ?? 2000);
const SEED = process.env.FUZZ_SEED === undefined ? undefined : Number(process.env.FUZZ_SEED);
const CONCURRENCY = 16;
/** 60 s per protocol for the default count on a loaded 2-core machine; a longer run gets proportionally more. */
const BLOCK_MS = 60_000 * Math.max(1, REQUESTS / 2000);
/** Generous: the point is "not growing with the request count", not a tight budget. */
const RSS_GROWTH_BYTES = 256 * 1024 * 1024;

interface Answer {
  readonly status: number;
  /** grpc-status from trailers, trailers-only headers or the gRPC-Web trailer frame; undefined elsewhere. */
  readonly grpcStatus: string | undefined;
  readonly body: Buffer;
}

let s: RunningApp;
let h1: http.Agent;
beforeAll(async () => {
  s = await startApp();
  h1 = new http.Agent({ keepAlive: true, maxSockets: CONCURRENCY });
});
afterAll(async () => {
  h1?.destroy();
  await s?.close();
});

function sendH1(req: FuzzRequest, method = "POST"): Promise<Answer> {
  return new Promise((resolve, reject) => {
    const r = http.request(
      {
        host: "127.0.0.1",
        port: s.port,
        agent: h1,
        method,
        path: req.path,
        // node frames a DELETE body only when told its length; unframed bytes would read as a second request.
        headers: { ...req.headers, "content-length": String(req.body.byteLength) },
      },
      (res) => {
        const chunks: Buffer[] = [];
        res.on("data", (c: Buffer) => chunks.push(c));
        res.on("end", () => {
          const body = Buffer.concat(chunks);
          resolve({ status: res.statusCode ?? 0, grpcStatus: grpcWebStatus(body), body });
        });
        res.on("error", reject);
      },
    );
    r.on("error", reject);
    r.end(req.body);
  });
}

/** The status in a gRPC-Web trailer frame (flag 0x80) at the end of the body. */
function grpcWebStatus(body: Buffer): string | undefined {
  let offset = 0;
  while (body.length - offset >= 5) {
    const flags = body[offset] ?? 0;
    const length = body.readUInt32BE(offset + 1);
    if (flags === 0x80)
      return /grpc-status:\s*(\d+)/i.exec(body.toString("utf8", offset + 5, offset + 5 + length))?.[1];
    offset += 5 + length;
  }
  return undefined;
}

function sendH2(session: http2.ClientHttp2Session, req: FuzzRequest): Promise<Answer> {
  return new Promise((resolve, reject) => {
    const stream = session.request({ ":method": "POST", ":path": req.path, ...req.headers });
    let status = 0;
    let grpcStatus: string | undefined;
    const chunks: Buffer[] = [];
    stream.on("response", (h) => {
      status = Number(h[":status"]);
      grpcStatus = h["grpc-status"] as string | undefined;
    });
    stream.on("trailers", (t) => {
      grpcStatus = t["grpc-status"] as string | undefined;
    });
    stream.on("data", (c: Buffer) => chunks.push(c));
    stream.on("end", () => resolve({ status, grpcStatus, body: Buffer.concat(chunks) }));
    stream.on("error", reject);
    stream.end(req.body);
  });
}

/** The answers the specs mandate even for a caller's mistake. */
function mandated(req: FuzzRequest, a: Answer): boolean {
  const known = (e: string | undefined) => e === undefined || ["gzip", "br", "identity"].includes(e);
  // Unknown compression is `unimplemented` (grpc compression.md; Connect: HTTP 501).
  if (a.status === 501 && !known(req.headers["content-encoding"])) return true;
  // A compressed flag with no encoding to decompress it is `internal` (gRPC spec, connect-node).
  const encoding = req.headers["grpc-encoding"];
  const noEncoding = encoding === undefined || encoding === "identity" || encoding === "";
  if (a.grpcStatus === "13" && noEncoding && req.flags.some((f) => (f & 1) === 1)) return true;
  return false;
}

/** Sends `requests` malformed requests in batches of CONCURRENCY, and tallies what came back. */
async function fuzz<R extends FuzzRequest>(
  name: string,
  arb: fc.Arbitrary<R>,
  send: (r: R) => Promise<Answer>,
): Promise<void> {
  const tally = new Map<string, number>();
  const rssBefore = process.memoryUsage().rss;
  await fc.assert(
    fc.asyncProperty(fc.array(arb, { minLength: CONCURRENCY, maxLength: CONCURRENCY }), async (batch) => {
      const answers = await Promise.all(batch.map((r) => send(r)));
      answers.forEach((a, i) => {
        const key = a.grpcStatus === undefined ? `http ${a.status}` : `grpc-status ${a.grpcStatus}`;
        tally.set(key, (tally.get(key) ?? 0) + 1);
        const req = batch[i];
        if (!req || mandated(req, a)) return;
        const failed = a.status >= 500 || a.grpcStatus === "13" || a.grpcStatus === "2";
        if (failed) {
          throw new Error(
            `${name} answered ${a.status}/${a.grpcStatus ?? "-"} ${a.body.toString("utf8", 0, 200)}`,
          );
        }
      });
    }),
    { numRuns: Math.ceil(REQUESTS / CONCURRENCY), ...(SEED === undefined ? {} : { seed: SEED }) },
  );
  console.info(`fuzz ${name}: ${[...tally].map(([k, n]) => `${k} x${n}`).join(", ")}`);
  expect(process.memoryUsage().rss - rssBefore).toBeLessThan(RSS_GROWTH_BYTES);
  await stillLogsIn();
}

/** A full login (send a code, verify it) after the storm: the server is alive and unharmed. */
async function stillLogsIn(): Promise<void> {
  const client = createClient(
    AuthService,
    createConnectTransport({ baseUrl: s.baseUrl, httpVersion: "1.1" }),
  );
  const phone = uniquePhone();
  await client.sendOtp({ phone });
  const session = await client.verifyOtp({ phone, otp: s.sms.lastCode(phone) });
  expect(session.accessToken).not.toBe("");
}

describe("fuzz: malformed requests never answer 5xx and leave the server serving", () => {
  it("REST /api/v1", () => fuzz("rest", restRequest, (r) => sendH1(r, r.method)), BLOCK_MS);

  it(
    "Connect JSON",
    () =>
      fuzz(
        "connect-json",
        connectUnary(["application/json", "application/json; charset=utf-8"], jsonBody),
        sendH1,
      ),
    BLOCK_MS,
  );

  it(
    "Connect binary",
    () => fuzz("connect-proto", connectUnary(["application/proto"], protoBody), sendH1),
    BLOCK_MS,
  );

  it(
    "gRPC over h2c",
    async () => {
      const session = http2.connect(s.baseUrl);
      try {
        await fuzz(
          "grpc",
          enveloped(["application/grpc", "application/grpc+proto", "application/grpc+json"]),
          (r) => sendH2(session, r),
        );
      } finally {
        session.close();
      }
    },
    BLOCK_MS,
  );

  it(
    "gRPC-Web",
    () =>
      fuzz(
        "grpc-web",
        enveloped(["application/grpc-web", "application/grpc-web+proto", "application/grpc-web+json"]),
        sendH1,
      ),
    BLOCK_MS,
  );
});
