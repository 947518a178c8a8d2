import { brotliCompressSync, gzipSync } from "node:zlib";
import { create, toBinary } from "@bufbuild/protobuf";
import fc from "fast-check";
import { SendOtpRequestSchema, VerifyOtpRequestSchema } from "../../gen/auth/v1/auth_pb.js";

/** One request as the fuzzer sends it: raw headers and body bytes, nothing a client library would fix up. */
export interface FuzzRequest {
  readonly path: string;
  readonly headers: Readonly<Record<string, string>>;
  readonly body: Uint8Array;
  /** The envelopes' flags, when the body was built as frames (to tell which answers the specs mandate). */
  readonly flags: readonly number[];
}

const RPC_PATHS = ["/auth.v1.AuthService/SendOtp", "/auth.v1.AuthService/VerifyOtp"];

/** Valid messages, the seed the mutations start from. */
const validProto = fc.oneof(
  fc
    .string({ maxLength: 20 })
    .map((phone) => toBinary(SendOtpRequestSchema, create(SendOtpRequestSchema, { phone }))),
  fc
    .tuple(fc.string({ maxLength: 20 }), fc.string({ maxLength: 8 }))
    .map(([phone, otp]) => toBinary(VerifyOtpRequestSchema, create(VerifyOtpRequestSchema, { phone, otp }))),
);

/** Start-group tags of an unknown field, nested past protobuf-es's recursion limit of 100. */
const deeplyNested = fc.integer({ min: 90, max: 400 }).map((depth) => new Uint8Array(depth).fill(0x7b));

/** A valid message cut short, or with its first length prefix overstated. */
const truncated = validProto.chain((bytes) =>
  fc.integer({ min: 0, max: Math.max(0, bytes.length - 1) }).map((n) => bytes.subarray(0, n)),
);
const overstated = validProto.map((bytes) => {
  const copy = Uint8Array.from(bytes);
  if (copy.length > 1) copy[1] = 0x7f;
  return copy;
});

/** Protobuf-ish bytes: valid, truncated, nested too deep, wrong wire types, or noise. */
export const protoBody: fc.Arbitrary<Uint8Array> = fc.oneof(
  validProto,
  truncated,
  overstated,
  deeplyNested,
  fc.uint8Array({ maxLength: 256 }),
  fc
    .uint8Array({ minLength: 1, maxLength: 16 })
    .map((b) => Uint8Array.of(0x0a, 0xff, 0xff, 0xff, 0xff, 0x0f, ...b)),
);

const text = (s: string) => new TextEncoder().encode(s);

/** JSON-ish bodies: valid and invalid JSON, wrong shapes and types, deep nesting, noise. */
export const jsonBody: fc.Arbitrary<Uint8Array> = fc.oneof(
  fc.json({ maxDepth: 4 }).map(text),
  fc
    .record({ phone: fc.jsonValue({ maxDepth: 2 }), otp: fc.jsonValue({ maxDepth: 2 }) })
    .map((o) => text(JSON.stringify(o))),
  fc.integer({ min: 50, max: 5000 }).map((n) => text(`${"[".repeat(n)}${"]".repeat(n)}`)),
  fc.integer({ min: 50, max: 5000 }).map((n) => text(`${'{"phone":'.repeat(n)}1${"}".repeat(n)}`)),
  fc.string({ maxLength: 64 }).map(text),
  fc.uint8Array({ maxLength: 128 }),
);

/** A body as sent under a content encoding: real gzip/brotli, cut short, or bytes that only claim to be it. */
export function encoded(
  body: fc.Arbitrary<Uint8Array>,
): fc.Arbitrary<{ encoding?: string; bytes: Uint8Array }> {
  return fc.oneof(
    { weight: 4, arbitrary: body.map((bytes) => ({ bytes })) },
    body.map((b) => ({ encoding: "gzip", bytes: new Uint8Array(gzipSync(b)) })),
    body.map((b) => ({ encoding: "br", bytes: new Uint8Array(brotliCompressSync(b)) })),
    fc.tuple(body, fc.nat()).map(([b, cut]) => {
      const z = gzipSync(b);
      return { encoding: "gzip", bytes: new Uint8Array(z.subarray(0, cut % z.length)) };
    }),
    fc
      .tuple(fc.constantFrom("gzip", "br", "identity", "deflate", "zstd", "GZIP", ""), body)
      .map(([encoding, bytes]) => ({ encoding, bytes })),
  );
}

/** Length-prefixed envelopes (flags, 4-byte length, payload) with random flags, lengths that lie, and tails. */
export const frames: fc.Arbitrary<{ flags: number[]; bytes: Uint8Array }> = fc
  .tuple(
    fc.array(
      fc.record({
        flags: fc.oneof(
          { weight: 6, arbitrary: fc.constant(0) },
          fc.constantFrom(1, 2, 0x80, 0x81),
          fc.integer({ min: 0, max: 255 }),
        ),
        payload: fc.oneof(
          protoBody,
          jsonBody,
          protoBody.map((b) => new Uint8Array(gzipSync(b))),
        ),
        lie: fc.option(
          fc.oneof(fc.integer({ min: 0, max: 1024 }), fc.constant(0xffff_ffff), fc.constant(65537)),
        ),
      }),
      { maxLength: 3 },
    ),
    fc.option(fc.uint8Array({ minLength: 1, maxLength: 7 })),
  )
  .map(([envelopes, tail]) => {
    const parts: Uint8Array[] = [];
    for (const e of envelopes) {
      const head = new Uint8Array(5);
      const view = new DataView(head.buffer);
      view.setUint8(0, e.flags);
      view.setUint32(1, e.lie ?? e.payload.length);
      parts.push(head, e.payload);
    }
    if (tail) parts.push(tail);
    return { flags: envelopes.map((e) => e.flags), bytes: new Uint8Array(Buffer.concat(parts)) };
  });

const maybe = (name: string, values: fc.Arbitrary<string>) =>
  fc.option(values, { freq: 3 }).map((v) => (v === null ? {} : { [name]: v }));

const headerNoise = fc.stringMatching(/^[\x20-\x7e]{0,24}$/);

/** The headers the protocols read besides content type and encoding, with valid, odd and junk values. */
const protocolHeaders = fc
  .tuple(
    maybe("connect-protocol-version", fc.oneof(fc.constantFrom("1", "2", "0", ""), headerNoise)),
    maybe(
      "grpc-timeout",
      fc.oneof(fc.constantFrom("1S", "100m", "5000u", "0n", "99999999H", "1x", "-1S"), headerNoise),
    ),
    maybe(
      "connect-timeout-ms",
      fc.oneof(fc.constantFrom("1000", "0", "-1", "1e9", "99999999999"), headerNoise),
    ),
    maybe("grpc-accept-encoding", fc.constantFrom("gzip", "br", "identity", "zstd,gzip")),
  )
  .map((parts) => Object.assign({}, ...parts) as Record<string, string>);

const path = fc.oneof(
  { weight: 8, arbitrary: fc.constantFrom(...RPC_PATHS) },
  fc.constantFrom(
    "/grpc.health.v1.Health/Check",
    "/auth.v1.AuthService/Nope",
    "/auth.v1.AuthService/SendOtp?x=1",
  ),
);

/** A Connect unary request (binary or JSON, per `types`) to one of the RPC paths. */
export function connectUnary(
  types: readonly string[],
  body: fc.Arbitrary<Uint8Array>,
): fc.Arbitrary<FuzzRequest> {
  return fc
    .tuple(
      path,
      fc.oneof({ weight: 6, arbitrary: fc.constantFrom(...types) }, headerNoise),
      encoded(body),
      protocolHeaders,
    )
    .map(([p, type, enc, extra]) => ({
      path: p,
      headers: {
        ...extra,
        "content-type": type,
        ...(enc.encoding === undefined ? {} : { "content-encoding": enc.encoding }),
      },
      body: enc.bytes,
      flags: [],
    }));
}

/** A gRPC or gRPC-Web request: enveloped frames under a content type of `types` and an optional grpc-encoding. */
export function enveloped(types: readonly string[]): fc.Arbitrary<FuzzRequest> {
  return fc
    .tuple(
      path,
      fc.oneof({ weight: 6, arbitrary: fc.constantFrom(...types) }, headerNoise),
      fc.option(fc.constantFrom("gzip", "br", "identity", "deflate", ""), { freq: 2 }),
      frames,
      protocolHeaders,
    )
    .map(([p, type, encoding, f, extra]) => ({
      path: p,
      headers: {
        ...extra,
        "content-type": type,
        ...(encoding === null ? {} : { "grpc-encoding": encoding }),
      },
      body: f.bytes,
      flags: f.flags,
    }));
}

/** A REST request: any of the JSON-ish bodies under a content type that is usually, not always, JSON. */
export const restRequest: fc.Arbitrary<FuzzRequest & { method: string }> = fc
  .tuple(
    fc.constantFrom(
      "/api/v1/auth/send-otp",
      "/api/v1/auth/verify-otp",
      "/api/v1/auth/refresh",
      "/api/v1/auth/logout",
    ),
    fc.oneof(
      { weight: 6, arbitrary: fc.constantFrom("application/json", "application/json; charset=utf-8") },
      fc.constantFrom("text/plain", "application/x-www-form-urlencoded", "application/proto", ""),
      headerNoise,
    ),
    fc.oneof({ weight: 9, arbitrary: fc.constant("POST") }, fc.constantFrom("PUT", "GET", "DELETE", "PATCH")),
    encoded(jsonBody),
  )
  .map(([p, type, method, enc]) => ({
    path: p,
    method,
    headers: {
      "content-type": type,
      ...(enc.encoding === undefined ? {} : { "content-encoding": enc.encoding }),
    },
    body: method === "GET" ? new Uint8Array(0) : enc.bytes,
    flags: [],
  }));
