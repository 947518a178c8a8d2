import http2 from "node:http2";
import type net from "node:net";
import type { Logger } from "../log.js";

/** Bounds on HTTP/2 sessions and streams; README "HTTP/2 and connection limits" documents each. */
export interface H2Limits {
  /**
   * Time for a new session to complete its handshake (preface and SETTINGS), and for a session to answer
   * each PING.
   */
  readonly handshakeTimeoutMs: number;
  /** A session with no open stream for this long is closed with GOAWAY (clients reconnect). */
  readonly idleTimeoutMs: number;
  /** Time for a client to send a whole request (headers and body) on a stream, like HTTP/1's requestTimeout. */
  readonly streamTimeoutMs: number;
  /** Streams a client may have open at once on one session; more are refused (REFUSED_STREAM). */
  readonly maxConcurrentStreams: number;
  /** Largest header block a client may send (uncompressed, as HTTP/2 counts it). */
  readonly maxHeaderListSize: number;
}

export const DEFAULT_H2_LIMITS: H2Limits = {
  handshakeTimeoutMs: 5_000,
  idleTimeoutMs: 120_000,
  streamTimeoutMs: 30_000,
  maxConcurrentStreams: 100,
  // HTTP/1's default header limit (Node's --max-http-header-size) is 16 KiB; the same order of magnitude here.
  maxHeaderListSize: 16_384,
};

/** The settings an HTTP/2 server announces for these limits. */
export function h2Settings(limits: H2Limits): http2.Settings {
  return { maxConcurrentStreams: limits.maxConcurrentStreams, maxHeaderListSize: limits.maxHeaderListSize };
}

interface Watched {
  readonly session: http2.ServerHttp2Session;
  /** Kept here: the session forgets its socket once destroyed. */
  readonly socket: net.Socket;
  readonly remote: string | undefined;
  readonly openedAt: number;
  handshaken: boolean;
  streams: number;
  idleSince: number;
  /** When the last PING answer arrived (never: the first PING goes out right after the handshake). */
  answeredAt: number;
  pingSentAt: number | undefined;
  /** When the guard itself asked the session to close (idle): it gets a grace period, then is destroyed. */
  closingAt: number | undefined;
}

/**
 * Keeps every HTTP/2 session within its bounds: handshake, idleness, liveness and per-stream request time.
 *
 * Liveness is why this exists. When nghttp2 meets a protocol error (DATA on stream 0, an oversized header
 * block) it sends GOAWAY and stops reading, and Node emits nothing: the session never sees the peer hang up
 * and its socket sits in CLOSE-WAIT for ever. Such a session never answers a PING, so each session is pinged
 * right after its handshake and then every few handshake timeouts; one that does not answer in time is
 * destroyed. The same catches peers that vanished without a FIN.
 *
 * One sweep timer serves every session; it runs only while there are sessions.
 */
export class H2Guard {
  readonly #watched = new Map<http2.ServerHttp2Session, Watched>();
  readonly #sweepMs: number;
  readonly #pingEveryMs: number;
  #timer: NodeJS.Timeout | undefined;

  constructor(
    private readonly limits: H2Limits,
    private readonly log: Logger,
  ) {
    const shortest = Math.min(limits.handshakeTimeoutMs, limits.idleTimeoutMs);
    this.#sweepMs = Math.min(1_000, Math.max(50, Math.floor(shortest / 5)));
    this.#pingEveryMs = 3 * limits.handshakeTimeoutMs;
  }

  get sessions(): number {
    return this.#watched.size;
  }

  watch(session: http2.ServerHttp2Session, socket: net.Socket): void {
    const now = performance.now();
    const w: Watched = {
      session,
      socket,
      remote: socket.remoteAddress,
      openedAt: now,
      handshaken: false,
      streams: 0,
      idleSince: now,
      answeredAt: Number.NEGATIVE_INFINITY,
      pingSentAt: undefined,
      closingAt: undefined,
    };
    this.#watched.set(session, w);
    session.once("remoteSettings", () => {
      w.handshaken = true;
    });
    session.on("stream", (stream) => this.#watchStream(w, stream));
    // Without a listener an 'error' would be rethrown; the server's 'sessionError' is not needed here.
    session.on("error", () => {});
    session.once("close", () => {
      this.#watched.delete(session);
      if (this.#watched.size === 0) this.#stop();
      // A graceful close ends the socket and waits for the peer's FIN; a peer that never sends one must not
      // keep the socket.
      if (!socket.destroyed) {
        setTimeout(() => socket.destroy(), this.limits.handshakeTimeoutMs).unref();
      }
    });
    this.#timer ??= setInterval(() => this.#sweep(), this.#sweepMs).unref();
  }

  #watchStream(w: Watched, stream: http2.ServerHttp2Stream): void {
    w.streams += 1;
    const timer = setTimeout(() => {
      // The request arrived whole: a long response (a Watch stream) is not the client's delay.
      if (stream.destroyed || stream.state.remoteClose) return;
      this.log.warn(
        {
          remote: w.remote,
          stream: stream.id,
          timeoutMs: this.limits.streamTimeoutMs,
          reason: "stream timeout",
        },
        "HTTP/2 request not received in time: stream reset",
      );
      stream.close(http2.constants.NGHTTP2_CANCEL);
    }, this.limits.streamTimeoutMs).unref();
    stream.once("close", () => {
      clearTimeout(timer);
      w.streams -= 1;
      if (w.streams === 0) w.idleSince = performance.now();
    });
  }

  #sweep(): void {
    const now = performance.now();
    for (const w of this.#watched.values()) {
      if (w.session.destroyed) continue;
      if (!w.handshaken) {
        if (now - w.openedAt > this.limits.handshakeTimeoutMs) {
          this.#destroy(w, "handshake timeout", "HTTP/2 handshake not completed in time: connection closed");
        }
        continue;
      }
      if (w.closingAt !== undefined) {
        if (now - w.closingAt > this.limits.handshakeTimeoutMs) {
          w.session.destroy();
          w.socket.destroy();
        }
        continue;
      }
      if (w.pingSentAt !== undefined) {
        if (now - w.pingSentAt > this.limits.handshakeTimeoutMs) {
          this.#destroy(
            w,
            "no ping answer",
            "HTTP/2 peer did not answer a PING (protocol error or gone): connection closed",
          );
        }
        continue;
      }
      if (w.streams === 0 && now - w.idleSince > this.limits.idleTimeoutMs) {
        this.log.info(
          { remote: w.remote, idleMs: Math.round(now - w.idleSince), reason: "idle" },
          "HTTP/2 session idle: GOAWAY sent",
        );
        w.closingAt = now;
        w.session.close();
        continue;
      }
      // A session closing for another reason (shutdown) has its own deadline.
      if (!w.session.closed && now - w.answeredAt >= this.#pingEveryMs) this.#ping(w, now);
    }
  }

  #ping(w: Watched, now: number): void {
    w.pingSentAt = now;
    const sent = w.session.ping((err) => {
      if (err) return;
      w.pingSentAt = undefined;
      w.answeredAt = performance.now();
    });
    if (!sent) w.pingSentAt = undefined;
  }

  #destroy(w: Watched, reason: string, message: string): void {
    this.log.warn({ remote: w.remote, reason }, message);
    w.session.destroy();
    // Destroying the session ends the socket politely; nghttp2 no longer reads it, so cut it now.
    w.socket.destroy();
  }

  #stop(): void {
    clearInterval(this.#timer);
    this.#timer = undefined;
  }
}
