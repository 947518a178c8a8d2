import { once } from "node:events";
import http from "node:http";
import http2 from "node:http2";
import net from "node:net";
import { pino } from "pino";
import type { Logger } from "../log.js";
import { DEFAULT_H2_LIMITS, H2Guard, type H2Limits, h2Settings } from "./h2-guard.js";
import type { Handler } from "./handler.js";
import { assignRequestId } from "./request-id.js";
import { answerUnavailable } from "./shutdown.js";
import type { InFlightStream, StreamHandler } from "./stream-handler.js";

const H2_PREFACE = Buffer.from("PRI * HTTP/2.0\r\n");

type Request = http.IncomingMessage | http2.Http2ServerRequest;
type Response = http.ServerResponse | http2.Http2ServerResponse;

/** Limits on slow HTTP/1 clients; HTTP/2 sessions have theirs in H2Limits. */
export interface H1Timeouts {
  /** Time for a client to send a request's headers. */
  readonly headersTimeoutMs: number;
  /** Time for a client to send a whole request. */
  readonly requestTimeoutMs: number;
  /** How often the timeouts above are checked. */
  readonly checkIntervalMs: number;
}

const DEFAULT_H1_TIMEOUTS: H1Timeouts = {
  headersTimeoutMs: 10_000,
  requestTimeoutMs: 30_000,
  checkIntervalMs: 1_000,
};

/** Every bound the server enforces; README "HTTP/2 and connection limits" documents each. */
export interface ServerLimits extends H1Timeouts, H2Limits {
  /** Open client connections at most; past it new ones are answered 503 (or GOAWAY) and closed. 0: no cap. */
  readonly maxConnections: number;
}

export const DEFAULT_SERVER_LIMITS: ServerLimits = {
  ...DEFAULT_H1_TIMEOUTS,
  ...DEFAULT_H2_LIMITS,
  maxConnections: 0,
};

/** How long a refused connection may take to show which protocol it speaks, so it is refused in kind. */
const REFUSE_WITHIN_MS = 1_000;
/** Refusals in progress at most; past it new connections are cut without an answer. */
const MAX_REFUSING = 64;
/** HTTP/2 SETTINGS (empty) and GOAWAY (last stream 0, REFUSED_STREAM): "retry elsewhere or later". */
const H2_REFUSAL = Buffer.from([
  ...[0, 0, 0, 0x4, 0, 0, 0, 0, 0],
  ...[0, 0, 8, 0x7, 0, 0, 0, 0, 0],
  ...[0, 0, 0, 0, 0, 0, 0, 0x7],
]);
const H1_REFUSAL =
  "HTTP/1.1 503 Service Unavailable\r\nconnection: close\r\nretry-after: 1\r\ncontent-length: 0\r\n\r\n";

/** How a graceful shutdown went. */
export interface DrainResult {
  /** Requests that outlived the deadline and were answered Unavailable (or cut off mid-response). */
  readonly forced: number;
  readonly ms: number;
}

/**
 * One TCP listener for HTTP/1.1 and cleartext HTTP/2 with prior knowledge (what gRPC clients speak).
 * Node's `allowHTTP1` only works with TLS, so each connection is handed to the right server by its first
 * bytes: an HTTP/2 client opens with the fixed preface "PRI * HTTP/2.0", which no HTTP/1 method starts with.
 *
 * It also owns the connections' lifecycle: every request gets a request id (echoed as `x-request-id`, and written
 * back into the request's own header, where each layer reads it for the log lines it writes while serving the
 * request), and `shutdown()` drains HTTP/1.1 and HTTP/2 connections gracefully.
 */
export class OnePortServer {
  readonly h1: http.Server;
  readonly h2: http2.Http2Server;
  readonly listener: net.Server;
  readonly #sockets = new Set<net.Socket>();
  /** HTTP/1 connections and how many requests each is serving: idle ones can be closed at once. */
  readonly #h1Busy = new Map<net.Socket, number>();
  readonly #h2Sockets = new Set<net.Socket>();
  readonly #h2Sessions = new Set<http2.ServerHttp2Session>();
  readonly #inFlight = new Map<Response, Request>();
  readonly #inFlightStreams = new Set<InFlightStream>();
  readonly #refusing = new Set<net.Socket>();
  readonly #guard: H2Guard;
  readonly #maxConnections: number;
  readonly #log: Logger;
  /** The socket being handed to the HTTP/2 server: its 'session' event fires synchronously, without it. */
  #handingOver: net.Socket | undefined;
  /** Connections refused since the last log line about it, so a flood is one line a second, not thousands. */
  #refusedUnlogged = 0;
  #refusalLoggedAt = Number.NEGATIVE_INFINITY;
  #draining = false;

  constructor(
    handler: Handler,
    limits: Partial<ServerLimits> = {},
    log: Logger = pino({ level: "silent" }),
    streams?: StreamHandler,
  ) {
    const serve = (req: Request, res: Response) => this.#serve(req, res, handler);
    const t = { ...DEFAULT_SERVER_LIMITS, ...limits };
    this.#log = log;
    this.#maxConnections = t.maxConnections;
    this.#guard = new H2Guard(t, log);
    this.h1 = http.createServer(
      {
        keepAliveTimeout: 65_000,
        headersTimeout: t.headersTimeoutMs,
        requestTimeout: t.requestTimeoutMs,
        connectionsCheckingInterval: t.checkIntervalMs,
      },
      serve,
    );
    // The HTTP/1 server is handed sockets and never listens itself, and Node only starts enforcing
    // headersTimeout/requestTimeout (its connection tracking) when a server starts listening. Without this a
    // client that trickles its headers (slowloris) would hold a connection forever.
    this.h1.emit("listening");
    this.h2 = http2.createServer({ settings: h2Settings(t) }, serve);
    if (streams) this.#offerStreams(streams);
    this.h2.on("session", (session: http2.ServerHttp2Session) => {
      if (this.#handingOver) this.#guard.watch(session, this.#handingOver);
      this.#h2Sessions.add(session);
      session.once("close", () => this.#h2Sessions.delete(session));
      if (this.#draining) session.close();
    });
    this.listener = net.createServer({ noDelay: true }, (socket) => this.#dispatch(socket));
  }

  listen(port: number, host: string): Promise<net.AddressInfo> {
    return new Promise((resolve, reject) => {
      this.listener.once("error", reject);
      this.listener.listen(port, host, () => {
        this.listener.off("error", reject);
        resolve(this.listener.address() as net.AddressInfo);
      });
    });
  }

  /** Open client connections, refused ones still being answered included. */
  get connections(): number {
    return this.#sockets.size;
  }

  /** Requests being served right now. */
  get inFlight(): number {
    return this.#inFlight.size + this.#inFlightStreams.size;
  }

  /**
   * Puts `streams` in front of Node's compatibility layer. That layer is the server's own 'stream' listener,
   * added when the request handler was given; it is taken off and called for each stream `streams` leaves.
   */
  #offerStreams(streams: StreamHandler): void {
    const compat = this.h2.listeners("stream") as ((...args: unknown[]) => void)[];
    this.h2.removeAllListeners("stream");
    this.h2.on("stream", (stream: http2.ServerHttp2Stream, headers: http2.IncomingHttpHeaders, ...rest) => {
      const call = streams(stream, headers);
      if (call === undefined) {
        for (const listener of compat) listener.call(this.h2, stream, headers, ...rest);
        return;
      }
      this.#inFlightStreams.add(call);
      stream.once("close", () => this.#inFlightStreams.delete(call));
    });
  }

  /** Stops accepting and ends every connection now. */
  async close(): Promise<void> {
    this.#draining = true;
    const closed = this.#listenerClosed();
    for (const s of this.#sockets) s.destroy();
    await closed;
  }

  /**
   * Graceful shutdown: stop accepting (new connections are refused), close idle HTTP/1.1 connections and send
   * `connection: close` on busy ones, send HTTP/2 GOAWAY (streams already open run to completion), and wait
   * for every connection to end. Requests still running after `timeoutMs` are answered Unavailable and their
   * connections destroyed.
   */
  async shutdown(timeoutMs: number): Promise<DrainResult> {
    const started = performance.now();
    this.#draining = true;
    const closed = this.#listenerClosed();
    for (const socket of this.#sockets) {
      const busy = this.#h1Busy.get(socket);
      // Not yet known as HTTP/1 or HTTP/2: it has sent no request, so it loses nothing.
      if (busy === undefined && !this.#h2Sockets.has(socket)) socket.destroy();
      else if (busy === 0) socket.destroySoon();
    }
    for (const res of this.#inFlight.keys()) {
      if (!res.headersSent && !("stream" in res)) res.setHeader("connection", "close");
    }
    for (const session of this.#h2Sessions) session.close();

    let timer: NodeJS.Timeout | undefined;
    const deadline = new Promise<"deadline">((resolve) => {
      timer = setTimeout(() => resolve("deadline"), timeoutMs);
    });
    const outcome = await Promise.race([closed.then(() => "drained" as const), deadline]);
    clearTimeout(timer);
    let forced = 0;
    if (outcome === "deadline") {
      for (const [res, req] of [...this.#inFlight]) {
        forced += 1;
        answerUnavailable(req, res);
      }
      for (const call of [...this.#inFlightStreams]) {
        forced += 1;
        call.unavailable();
      }
      // Give the answers a moment to leave, then cut whatever is left.
      const grace = setTimeout(() => {
        for (const s of this.#sockets) s.destroy();
      }, 250);
      await closed;
      clearTimeout(grace);
    }
    return { forced, ms: Math.round(performance.now() - started) };
  }

  /** Stops accepting now; resolves once every connection it accepted has ended. */
  async #listenerClosed(): Promise<void> {
    // The callback would report "not running" on a second call; the sockets are what we wait for.
    if (this.listener.listening) {
      this.listener.close(() => {});
      // Stops the HTTP/1 timeout checks started in the constructor (it never listened, so nothing else closes).
      this.h1.close(() => {});
    }
    while (this.#sockets.size > 0) {
      const [first] = this.#sockets;
      if (first) await once(first, "close");
    }
  }

  #serve(req: Request, res: Response, handler: Handler): void {
    const id = assignRequestId(req.headers);
    res.setHeader("x-request-id", id);
    this.#inFlight.set(res, req);
    const h1Socket = req.httpVersionMajor === 1 ? req.socket : undefined;
    if (h1Socket) {
      this.#h1Busy.set(h1Socket, (this.#h1Busy.get(h1Socket) ?? 0) + 1);
      // A request that arrives on a kept-alive connection while draining is served, and the connection closes.
      if (this.#draining) res.setHeader("connection", "close");
    }
    res.once("close", () => {
      this.#inFlight.delete(res);
      if (!h1Socket) return;
      const left = (this.#h1Busy.get(h1Socket) ?? 1) - 1;
      this.#h1Busy.set(h1Socket, left);
      if (this.#draining && left === 0) h1Socket.destroySoon();
    });
    handler(req, res);
  }

  #dispatch(socket: net.Socket): void {
    this.#sockets.add(socket);
    socket.once("close", () => {
      this.#sockets.delete(socket);
      this.#h1Busy.delete(socket);
      this.#h2Sockets.delete(socket);
    });
    if (this.#draining) {
      socket.destroy();
      return;
    }
    if (this.#maxConnections > 0 && this.#sockets.size - this.#refusing.size > this.#maxConnections) {
      this.#refuse(socket);
      return;
    }
    // A connection that never says anything must not hold a socket forever.
    const onTimeout = () => socket.destroy();
    const onError = () => socket.destroy();
    socket.setTimeout(10_000);
    socket.once("timeout", onTimeout);
    socket.on("error", onError);
    let seen = Buffer.alloc(0);
    const onReadable = () => {
      let chunk: Buffer | null;
      // biome-ignore lint/suspicious/noAssignInExpressions: the stream read loop idiom
      while ((chunk = socket.read() as Buffer | null) !== null) seen = Buffer.concat([seen, chunk]);
      const n = Math.min(seen.length, H2_PREFACE.length);
      const isH2 = seen.subarray(0, n).equals(H2_PREFACE.subarray(0, n));
      // Undecided while what has arrived is still a prefix of the preface.
      if (isH2 && n < H2_PREFACE.length) return;
      socket.off("readable", onReadable);
      socket.setTimeout(0);
      socket.off("timeout", onTimeout);
      socket.off("error", onError);
      socket.unshift(seen);
      if (isH2) {
        this.#h2Sockets.add(socket);
        this.#handingOver = socket;
        try {
          this.h2.emit("connection", socket);
        } finally {
          this.#handingOver = undefined;
        }
      } else {
        this.#h1Busy.set(socket, 0);
        this.h1.emit("connection", socket);
      }
    };
    socket.on("readable", onReadable);
  }

  /**
   * Over the connection cap: answers in the client's own protocol (503 with retry-after, or GOAWAY with
   * REFUSED_STREAM, which gRPC clients retry) and closes. A flood of refusals is itself bounded.
   */
  #refuse(socket: net.Socket): void {
    this.#logRefusal();
    if (this.#refusing.size >= MAX_REFUSING) {
      socket.destroy();
      return;
    }
    this.#refusing.add(socket);
    socket.once("close", () => this.#refusing.delete(socket));
    socket.on("error", () => socket.destroy());
    const cut = setTimeout(() => socket.destroy(), REFUSE_WITHIN_MS + 250);
    socket.once("close", () => clearTimeout(cut));
    socket.setTimeout(REFUSE_WITHIN_MS, () => socket.destroy());
    socket.once("data", (first: Buffer) => {
      socket.pause();
      const h2 = first.subarray(0, 3).equals(H2_PREFACE.subarray(0, 3));
      socket.end(h2 ? H2_REFUSAL : H1_REFUSAL);
    });
  }

  #logRefusal(): void {
    this.#refusedUnlogged += 1;
    const now = performance.now();
    if (now - this.#refusalLoggedAt < 1_000) return;
    this.#log.warn(
      {
        reason: "connection cap",
        maxConnections: this.#maxConnections,
        refused: this.#refusedUnlogged,
      },
      "too many connections: refusing new ones",
    );
    this.#refusalLoggedAt = now;
    this.#refusedUnlogged = 0;
  }
}
