import {
  constants,
  type IncomingHttpHeaders,
  type OutgoingHttpHeaders,
  type ServerHttp2Stream,
} from "node:http2";
import {
  create,
  type DescMessage,
  type DescMethodUnary,
  fromBinary,
  type MessageShape,
  toBinary,
} from "@bufbuild/protobuf";
import { Code, ConnectError } from "@connectrpc/connect";
import { setTrailerStatus } from "@connectrpc/connect/protocol-grpc";
import { AuthService } from "../../gen/auth/v1/auth_pb.js";
import type { Logger } from "../log.js";
import type { Client } from "../login/model.js";
import { requestLog } from "../login/request-log.js";
import { codeNames } from "../ops/answer-code.js";
import type { Metrics } from "../ops/metrics.js";
import type { AuthCalls, UnaryCall } from "../rpc/auth-calls.js";
import { toConnectError } from "../rpc/errors.js";
import { undecodable } from "../rpc/malformed-requests.js";
import type { ClientRequest } from "./client-ip.js";
import { encodeGrpcMessage } from "./grpc-message.js";
import { assignRequestId } from "./request-id.js";
import { SHUTDOWN_MESSAGE } from "./shutdown.js";
import type { InFlightStream } from "./stream-handler.js";

/*
 * Unary gRPC without connect-node's pipeline. connect-node runs every call through its streaming machinery
 * (async generators, an AbortController and Headers objects per call), which costs several times what the
 * login core itself does; a unary gRPC call is one length-prefixed message each way and a few trailers.
 *
 * Only the calls listed in `fastRoutes` are taken, and only in their plain form: HTTP/2, POST,
 * `application/grpc` or `application/grpc+proto`, no message compression, a well-formed `grpc-timeout` or
 * none. Everything else (gzip, JSON, gRPC-Web, Connect, reflection, health, other and new RPCs) goes on to
 * connect-node untouched. What the fast path answers, it answers as connect-node does: the same codes and
 * messages for the same malformed envelopes, the same `google.rpc.Status` details and metadata, counted under
 * the same metric series, with `grpc-message` percent-encoded as the spec says by the same `encodeGrpcMessage`
 * that rewrites connect-node's trailers (src/http/grpc-message.ts). One deliberate difference: an error is a
 * trailers-only response (headers with END_STREAM, as the gRPC spec and grpc-go do; connect-node sends empty
 * headers, then trailers).
 */

const CONTENT_TYPE = /^application\/grpc(?:\+proto)?$/i;
const TIMEOUT = /^(\d{1,8})([HMSmun])$/;
const TIMEOUT_UNIT_MS: Readonly<Record<string, number>> = {
  H: 3_600_000,
  M: 60_000,
  S: 1_000,
  m: 1,
  u: 0.001,
  n: 0.000_001,
};
const MAX_TIMER_MS = 2 ** 31 - 1;
const COMPRESSED_FLAG = 0b0000_0001;
const HEADER_BYTES = 5;
const OK_TRAILERS = { "grpc-status": "0" } as const;

/** One RPC the fast path serves: decoding its request yields the call, ready to run for a client. */
interface Route {
  readonly method: DescMethodUnary;
  /** Throws when the message does not decode. */
  parse(message: Uint8Array): (client: Client) => Promise<Uint8Array>;
}

function route<I extends DescMessage, O extends DescMessage>(
  method: DescMethodUnary<I, O>,
  call: UnaryCall<I, O>,
): Route {
  return {
    method,
    parse(message) {
      let req: MessageShape<I>;
      try {
        req = fromBinary(method.input, message);
      } catch (err) {
        throw undecodable(method.input, err);
      }
      return async (client) => toBinary(method.output, create(method.output, await call(req, client)));
    },
  };
}

/** The RPCs the fast path takes, by request path: exactly these; any other path is connect-node's. */
export function fastRoutes(calls: AuthCalls): ReadonlyMap<string, Route> {
  const m = AuthService.method;
  return new Map(
    [
      route(m.sendOtp, calls.sendOtp),
      route(m.verifyOtp, calls.verifyOtp),
      route(m.refreshToken, calls.refreshToken),
      route(m.logout, calls.logout),
    ].map((r) => [`/${r.method.parent.typeName}/${r.method.name}`, r]),
  );
}

export interface GrpcFastPathDeps {
  readonly routes: ReadonlyMap<string, Route>;
  readonly clientOf: (req: ClientRequest) => Client;
  readonly log: Logger;
  readonly metrics: Metrics | undefined;
  /** connect-node's `readMaxBytes`: a larger message is refused with resource_exhausted. */
  readonly readMaxBytes: number;
}

/**
 * Takes an HTTP/2 stream as it arrives, before Node's compatibility layer wraps it in a request and a response
 * (two stream objects and their listeners per call, which a unary gRPC call does not need): serves it and
 * returns the call, for the one-port server to count in flight and to answer Unavailable at a shutdown's
 * deadline; or returns undefined without touching it, and it goes on to the compatibility layer and
 * connect-node. A request with an `origin` header (a browser's, which needs CORS) is always left to them.
 */
export type GrpcFastPath = (
  stream: ServerHttp2Stream,
  headers: IncomingHttpHeaders,
) => InFlightStream | undefined;

export function grpcFastPath(deps: GrpcFastPathDeps): GrpcFastPath {
  const observers = new Map(
    [...deps.routes.values()].map((r) => [r, deps.metrics?.rpc(r.method, "grpc")] as const),
  );
  return (stream, h) => {
    const path = h[":path"];
    const r = path === undefined ? undefined : deps.routes.get(path);
    if (r === undefined || h[":method"] !== "POST" || h.origin !== undefined) return undefined;
    const type = h["content-type"];
    if (type === undefined || !CONTENT_TYPE.test(type)) return undefined;
    const encoding = h["grpc-encoding"];
    if (encoding !== undefined && encoding !== "identity") return undefined;
    const timeout = h["grpc-timeout"];
    let timeoutMs: number | undefined;
    if (timeout !== undefined) {
      const t = typeof timeout === "string" ? TIMEOUT.exec(timeout) : null;
      // connect-node refuses a malformed timeout in its own words.
      if (!t) return undefined;
      timeoutMs = Number(t[1]) * (TIMEOUT_UNIT_MS[t[2] ?? ""] ?? 1);
    }
    return new FastCall(r, stream, h, deps, observers.get(r), timeoutMs);
  };
}

/** One call in flight: reads the request, runs the route, answers exactly once. */
class FastCall implements InFlightStream {
  readonly #start = performance.now();
  readonly #chunks: Buffer[] = [];
  /** The id the call is served and logged under: the caller's `x-request-id` when sane, else a fresh one. */
  readonly #requestId: string;
  #size = 0;
  #lengthChecked = false;
  #settled = false;
  #timer: NodeJS.Timeout | undefined;

  constructor(
    private readonly route: Route,
    private readonly stream: ServerHttp2Stream,
    private readonly headers: IncomingHttpHeaders,
    private readonly deps: GrpcFastPathDeps,
    private readonly observer: { done(code: string, startMs: number): void } | undefined,
    timeoutMs: number | undefined,
  ) {
    this.#requestId = assignRequestId(headers);
    // Past what a timer can hold (about 24 days; grpc-timeout allows 11 000 years) is no deadline at all.
    if (timeoutMs !== undefined && timeoutMs <= MAX_TIMER_MS) {
      this.#timer = setTimeout(
        () => this.#refuse(new ConnectError("the operation timed out", Code.DeadlineExceeded)),
        timeoutMs,
      );
    }
    // A reset stream (the client canceled, or the stream timeout fired) ends the call: nothing is run for it,
    // and an answer still coming from the login core is dropped.
    const canceled = () => this.#canceled();
    stream.once("aborted", canceled);
    stream.once("close", canceled);
    // A reset sent with an error code (INTERNAL_ERROR from a client past its deadline) is an 'error' on the
    // stream, thrown where nothing listens, and its 'close' would then be lost. The call ends by 'close' anyway.
    stream.on("error", () => {});
    stream.on("data", (chunk: Buffer) => this.#data(chunk));
    stream.once("end", () => this.#end());
  }

  /** The shutdown's deadline passed with the call still running: Unavailable, as `answerUnavailable` says it. */
  unavailable(): void {
    this.#refuse(new ConnectError(SHUTDOWN_MESSAGE, Code.Unavailable));
  }

  #data(chunk: Buffer): void {
    if (this.#settled) return;
    this.#chunks.push(chunk);
    this.#size += chunk.byteLength;
    // The length prefix is checked as soon as it has arrived, so an oversized message is refused unread.
    if (!this.#lengthChecked && this.#size >= HEADER_BYTES) {
      this.#lengthChecked = true;
      const head = this.#chunks.length === 1 ? chunk : Buffer.concat(this.#chunks);
      const length = head.readUInt32BE(1);
      if (length > this.deps.readMaxBytes) {
        this.#refuse(
          new ConnectError(
            `message size ${length} is larger than configured readMaxBytes ${this.deps.readMaxBytes}`,
            Code.ResourceExhausted,
          ),
        );
      }
    }
  }

  #end(): void {
    // A reset ends the request's body too (Node ends it before it emits 'aborted'): what arrived is not a
    // message, and nobody is left to answer.
    if (this.stream.closed) this.#canceled();
    if (this.#settled) return;
    const body = this.#chunks.length === 1 ? (this.#chunks[0] as Buffer) : Buffer.concat(this.#chunks);
    let run: (client: Client) => Promise<Uint8Array>;
    try {
      run = this.route.parse(this.#message(body));
    } catch (err) {
      this.#refuse(ConnectError.from(err));
      return;
    }
    const client = this.deps.clientOf({ headers: this.headers, socket: this.stream.session?.socket });
    run(client).then(
      (message) => this.#reply(message),
      (err: unknown) => this.#refuse(toConnectError(err, requestLog(this.deps.log, client))),
    );
  }

  /** The one message of a unary request, refused in connect-node's words when the body is not exactly that. */
  #message(body: Buffer): Uint8Array {
    if (body.byteLength === 0) {
      throw new ConnectError("protocol error: missing input message for unary method", Code.Unimplemented);
    }
    const incomplete = () => new ConnectError("protocol error: incomplete envelope", Code.InvalidArgument);
    if (body.byteLength < HEADER_BYTES) throw incomplete();
    const length = body.readUInt32BE(1);
    const end = HEADER_BYTES + length;
    if (body.byteLength < end) throw incomplete();
    if (((body[0] ?? 0) & COMPRESSED_FLAG) !== 0) {
      throw new ConnectError(
        "received compressed envelope, but do not know how to decompress",
        Code.Internal,
      );
    }
    const message = body.subarray(HEADER_BYTES, end);
    if (body.byteLength > end) {
      // connect-node decodes the first message before it looks for a second.
      this.route.parse(message);
      if (
        body.byteLength - end < HEADER_BYTES ||
        body.byteLength < end + HEADER_BYTES + body.readUInt32BE(end + 1)
      ) {
        throw incomplete();
      }
      throw new ConnectError(
        "protocol error: received extra input message for unary method",
        Code.Unimplemented,
      );
    }
    return message;
  }

  #reply(message: Uint8Array): void {
    if (!this.#settle()) return;
    const stream = this.stream;
    if (stream.destroyed || stream.closed || stream.headersSent) {
      this.#observe(stream.headersSent ? "unavailable" : "canceled");
      return;
    }
    const frame = Buffer.allocUnsafe(HEADER_BYTES + message.byteLength);
    frame[0] = 0;
    frame.writeUInt32BE(message.byteLength, 1);
    frame.set(message, HEADER_BYTES);
    stream.respond(this.#headers(undefined), { waitForTrailers: true });
    stream.once("wantTrailers", () => stream.sendTrailers(OK_TRAILERS));
    stream.end(frame);
    this.#observe("ok");
  }

  /** Trailers-only: the status rides in the headers, with END_STREAM. */
  #refuse(err: ConnectError): void {
    if (!this.#settle()) return;
    const stream = this.stream;
    if (stream.destroyed || stream.closed || stream.headersSent) {
      this.#observe(stream.headersSent ? "unavailable" : "canceled");
      return;
    }
    const status: OutgoingHttpHeaders = {};
    setTrailerStatus(new Headers(), err).forEach((value, key) => {
      status[key] = value;
    });
    status["grpc-message"] = encodeGrpcMessage(err.rawMessage);
    stream.respond(this.#headers(status), { endStream: true });
    // The client may still be sending (an oversized message): it has its answer, the rest is not read.
    if (!stream.destroyed && !stream.readableEnded) stream.close(constants.NGHTTP2_CANCEL);
    this.#observe(codeNames[err.code] ?? "unknown");
  }

  #canceled(): void {
    if (!this.#settle()) return;
    this.deps.log.debug(
      { reqId: this.#requestId, procedure: this.headers[":path"] },
      "client closed request",
    );
    this.#observe("canceled");
  }

  /** Marks the call answered; false when it already was. */
  #settle(): boolean {
    if (this.#settled) return false;
    this.#settled = true;
    clearTimeout(this.#timer);
    return true;
  }

  /** The gRPC response headers, the request id echoed as on every answer of the one-port server. */
  #headers(extra: OutgoingHttpHeaders | undefined): OutgoingHttpHeaders {
    return {
      ":status": 200,
      "content-type": "application/grpc+proto",
      "x-request-id": this.#requestId,
      ...extra,
    };
  }

  #observe(code: string): void {
    this.observer?.done(code, this.#start);
  }
}
