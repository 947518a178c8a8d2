import http from "node:http";
import http2 from "node:http2";
import net from "node:net";
import type { Handler } from "./handler.js";

const H2_PREFACE = Buffer.from("PRI * HTTP/2.0\r\n");

/**
 * One TCP listener for HTTP/1.1 and cleartext HTTP/2 with prior knowledge (what gRPC clients speak).
 * Node's `allowHTTP1` only works with TLS, so each connection is handed to the right server by its first
 * bytes: an HTTP/2 client opens with the fixed preface "PRI * HTTP/2.0", which no HTTP/1 method starts with.
 */
export class OnePortServer {
  readonly h1: http.Server;
  readonly h2: http2.Http2Server;
  readonly listener: net.Server;
  readonly #sockets = new Set<net.Socket>();

  constructor(handler: Handler) {
    this.h1 = http.createServer({ keepAliveTimeout: 65_000, requestTimeout: 30_000 }, handler);
    this.h2 = http2.createServer({}, handler);
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

  /** Stops accepting and ends every connection now. */
  async close(): Promise<void> {
    const closed = new Promise<void>((resolve) => this.listener.close(() => resolve()));
    for (const s of this.#sockets) s.destroy();
    this.h1.closeAllConnections();
    await closed;
  }

  #dispatch(socket: net.Socket): void {
    this.#sockets.add(socket);
    socket.once("close", () => this.#sockets.delete(socket));
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
      (isH2 ? this.h2 : this.h1).emit("connection", socket);
    };
    socket.on("readable", onReadable);
  }
}
