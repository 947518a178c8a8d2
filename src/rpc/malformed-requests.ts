import { type DescMessage, fromBinary } from "@bufbuild/protobuf";
import { Code, ConnectError, type ConnectRouter } from "@connectrpc/connect";
import type { Compression, UniversalHandler, UniversalServerRequest } from "@connectrpc/connect/protocol";
import { parseContentType as connectContentType } from "@connectrpc/connect/protocol-connect";
import { parseContentType as grpcContentType } from "@connectrpc/connect/protocol-grpc";
import { parseContentType as grpcWebContentType } from "@connectrpc/connect/protocol-grpc-web";

/*
 * A caller's malformed bytes are `invalid_argument` on every protocol.
 *
 * connect-node 2.1 answers a protobuf message it cannot decode (`parse binary: premature EOF`, `maximum recursion
 * depth reached`) and a gzip/brotli body it cannot inflate (`decompression failed`) with `internal`: HTTP 500 or
 * grpc-status 13, raised while reading the request, before any interceptor runs, so neither an interceptor nor
 * the service can map it. Two things at our layer fix it without touching connect-node's protocol handling:
 *
 * - the compressions we accept turn a failed inflate into `invalid_argument` (connect-node calls them for every
 *   protocol and both formats);
 * - each RPC handler reads binary request messages one step ahead of connect-node and decodes them with the
 *   method's input schema; one that does not decode fails the request body with `invalid_argument`, which
 *   connect-node then answers in each protocol's own way (Connect JSON error, gRPC trailers, gRPC-Web trailer
 *   frame, Connect end-stream). Messages are at most `readMaxBytes`, so decoding twice costs about a
 *   microsecond; JSON already fails as `invalid_argument` and is left alone.
 *
 * What the specs fix stays as connect-node answers it: an unknown encoding is `unimplemented`, a compressed flag
 * without an encoding `internal`, an oversized message `resource_exhausted`, a broken envelope
 * `invalid_argument`.
 */

const COMPRESSED_FLAG = 0b0000_0001;

/** Wraps gzip/brotli so a body that does not inflate is the caller's fault, not ours. */
export function refusingCorrupt(compression: Compression): Compression {
  return {
    name: compression.name,
    compress: (bytes) => compression.compress(bytes),
    async decompress(bytes, readMaxBytes) {
      try {
        return await compression.decompress(bytes, readMaxBytes);
      } catch (err) {
        const ce = ConnectError.from(err);
        // `resource_exhausted` (too large once inflated) is already right.
        if (ce.code !== Code.Internal) throw ce;
        throw new ConnectError(
          `request body is not valid ${compression.name}`,
          Code.InvalidArgument,
          undefined,
          undefined,
          err,
        );
      }
    },
  };
}

/** The refusal of a message that does not decode with its schema, worded the same by every path that reads one. */
export function undecodable(schema: DescMessage, err: unknown): ConnectError {
  return new ConnectError(
    `request message is not a valid ${schema.typeName}: ${err instanceof Error ? err.message : String(err)}`,
    Code.InvalidArgument,
  );
}

/** How one request carries its binary messages, or undefined when it carries none we check. */
interface Framing {
  /** Enveloped (gRPC, gRPC-Web, Connect streaming) or one bare message (Connect unary). */
  readonly enveloped: boolean;
  /** The header naming the message compression. */
  readonly encodingHeader: string;
  /** The flag of an envelope that is not a message (gRPC-Web trailers, Connect end-stream); 0 for gRPC. */
  readonly endFlag: number;
}

function framingOf(contentType: string | null): Framing | undefined {
  if (contentType === null) return undefined;
  const grpc = grpcContentType(contentType);
  if (grpc) return grpc.binary ? { enveloped: true, encodingHeader: "grpc-encoding", endFlag: 0 } : undefined;
  const web = grpcWebContentType(contentType);
  if (web) {
    return web.binary && !web.text
      ? { enveloped: true, encodingHeader: "grpc-encoding", endFlag: 0x80 }
      : undefined;
  }
  const connect = connectContentType(contentType);
  if (!connect?.binary) return undefined;
  return connect.stream
    ? { enveloped: true, encodingHeader: "connect-content-encoding", endFlag: 0x02 }
    : { enveloped: false, encodingHeader: "content-encoding", endFlag: 0 };
}

/**
 * Makes every handler on the router refuse binary messages that do not decode with `invalid_argument`. Call it
 * after the last service is registered; `compressions` must be the adapter's `acceptCompression`.
 */
export function refuseUndecodable(
  router: ConnectRouter,
  compressions: readonly Compression[],
  readMaxBytes: number,
): void {
  const handlers = router.handlers;
  for (let i = 0; i < handlers.length; i++) {
    const handler = handlers[i];
    if (handler) handlers[i] = checked(handler, compressions, readMaxBytes);
  }
}

function checked(
  handler: UniversalHandler,
  compressions: readonly Compression[],
  readMaxBytes: number,
): UniversalHandler {
  const schema = handler.method.input;
  const serve = (req: UniversalServerRequest) => {
    const framing = framingOf(req.header.get("content-type"));
    const body = req.body;
    if (!framing || !isByteStream(body)) return handler(req);
    const encoding = req.header.get(framing.encodingHeader);
    const compression = compressions.find((c) => c.name === encoding);
    const check = async (flags: number, data: Uint8Array): Promise<void> => {
      let message = data;
      if (flags & COMPRESSED_FLAG) {
        // No or unknown encoding: connect-node answers as the specs say. A corrupt body fails there too.
        if (!compression) return;
        try {
          message = await compression.decompress(data, readMaxBytes);
        } catch {
          return;
        }
      }
      if (flags & framing.endFlag) return;
      try {
        fromBinary(schema, message);
      } catch (err) {
        throw undecodable(schema, err);
      }
    };
    const guarded = framing.enveloped
      ? checkEnvelopes(body, check, readMaxBytes)
      : checkWhole(body, (data) => check(compression ? COMPRESSED_FLAG : 0, data), readMaxBytes);
    return handler({ ...req, body: guarded });
  };
  return Object.assign(serve, handler);
}

function isByteStream(body: UniversalServerRequest["body"]): body is AsyncIterable<Uint8Array> {
  return typeof body === "object" && body !== null && Symbol.asyncIterator in body;
}

/** Connect unary: the body is one message; too large a body goes through for connect-node to refuse. */
async function* checkWhole(
  body: AsyncIterable<Uint8Array>,
  check: (data: Uint8Array) => Promise<void>,
  readMaxBytes: number,
): AsyncGenerator<Uint8Array> {
  const chunks: Uint8Array[] = [];
  let size = 0;
  const it = body[Symbol.asyncIterator]();
  for (let next = await it.next(); next.done !== true; next = await it.next()) {
    chunks.push(next.value);
    size += next.value.byteLength;
    if (size > readMaxBytes) {
      yield* chunks;
      for (let rest = await it.next(); rest.done !== true; rest = await it.next()) yield rest.value;
      return;
    }
  }
  const whole = chunks.length === 1 && chunks[0] ? chunks[0] : Buffer.concat(chunks);
  await check(whole);
  yield whole;
}

/**
 * Envelopes (flags, 4-byte length, message), each checked before it is passed on. Anything this cannot frame (an
 * oversized length, a truncated tail) goes through unchecked: connect-node refuses it with the right code.
 */
async function* checkEnvelopes(
  body: AsyncIterable<Uint8Array>,
  check: (flags: number, data: Uint8Array) => Promise<void>,
  readMaxBytes: number,
): AsyncGenerator<Uint8Array> {
  let pending: Uint8Array = new Uint8Array(0);
  const it = body[Symbol.asyncIterator]();
  for (let next = await it.next(); next.done !== true; next = await it.next()) {
    pending = pending.byteLength === 0 ? next.value : Buffer.concat([pending, next.value]);
    let offset = 0;
    while (pending.byteLength - offset >= 5) {
      const flags = pending[offset] ?? 0;
      const length = new DataView(pending.buffer, pending.byteOffset + offset + 1, 4).getUint32(0);
      if (length > readMaxBytes) {
        yield pending.subarray(offset);
        for (let rest = await it.next(); rest.done !== true; rest = await it.next()) yield rest.value;
        return;
      }
      if (pending.byteLength - offset < 5 + length) break;
      await check(flags, pending.subarray(offset + 5, offset + 5 + length));
      offset += 5 + length;
    }
    if (offset > 0) {
      yield pending.subarray(0, offset);
      pending = pending.subarray(offset);
    }
  }
  if (pending.byteLength > 0) yield pending;
}
