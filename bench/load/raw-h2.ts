import net from "node:net";

/**
 * A minimal HTTP/2 client over cleartext (prior knowledge), for load generation only. node:http2's client
 * costs about as much CPU per request as the server it measures; this one writes each request as two
 * prebuilt frames and reads only what the check needs, so one core drives the server as hard as h2load does.
 *
 * What it checks, without an HPACK decoder: the response's first header is `:status: 200` (HPACK static
 * index 8, the byte 0x88: pseudo-headers come first), and the body arrived. A gRPC error is trailers-only (no
 * body), and Connect errors have another status, so both count as failures.
 *
 * Like any real client it keeps within the server's SETTINGS_MAX_CONCURRENT_STREAMS: requests beyond it wait
 * here for a stream to finish. A server refuses the excess otherwise, and Node's closes the whole session
 * after 100 refusals (a protocol error), so an open-loop run that met a stall used to fail wholesale.
 */
export interface RawReply {
  readonly ok: boolean;
  readonly body: Buffer;
  readonly why?: string;
}

const PREFACE = Buffer.from("PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n");
const DATA = 0x0;
const HEADERS = 0x1;
const RST_STREAM = 0x3;
const SETTINGS = 0x4;
const PING = 0x6;
const GOAWAY = 0x7;
const END_STREAM = 0x1;
const ACK = 0x1;
const PADDED = 0x8;
const BIG_WINDOW = 0x7fff_ffff;
const SETTINGS_MAX_CONCURRENT_STREAMS = 0x3;

function frame(type: number, flags: number, stream: number, payload: Buffer): Buffer {
  const head = Buffer.allocUnsafe(9);
  head.writeUIntBE(payload.length, 0, 3);
  head.writeUInt8(type, 3);
  head.writeUInt8(flags, 4);
  head.writeUInt32BE(stream, 5);
  return Buffer.concat([head, payload]);
}

/** HPACK string literal, no Huffman; every string here is shorter than 127 bytes. */
function str(s: string): Buffer {
  const b = Buffer.from(s, "latin1");
  if (b.length >= 127) throw new Error(`header too long for this client: ${s}`);
  return Buffer.concat([Buffer.from([b.length]), b]);
}

/** Literal header without indexing: by static-table name index (< 15), or a new name (index 0). */
function literal(nameIndex: number, name: string | undefined, value: string): Buffer {
  return Buffer.concat([Buffer.from([nameIndex]), ...(name === undefined ? [] : [str(name)]), str(value)]);
}

interface Queued {
  readonly block: Buffer;
  readonly extraHeaders: readonly [string, string][];
  readonly body: Buffer;
  readonly resolve: (reply: RawReply) => void;
}

interface Pending {
  resolve(reply: RawReply): void;
  status: number;
  chunks: Buffer[];
  gotHeaders: boolean;
}

export class RawH2Connection {
  readonly #socket: net.Socket;
  readonly #pending = new Map<number, Pending>();
  /** Requests waiting for a stream under the server's limit, oldest first. */
  #queue: Queued[] = [];
  #queueHead = 0;
  /** The server's SETTINGS_MAX_CONCURRENT_STREAMS; unlimited until its SETTINGS arrive (RFC 9113 6.5.2). */
  #maxStreams = Number.POSITIVE_INFINITY;
  #nextStream = 1;
  #buffer: Buffer = Buffer.alloc(0);
  #received = 0;
  #corked = false;
  /** Why the connection can take no more requests (closed, failed, told to go away); undefined while it can. */
  #gone: string | undefined;

  /** Settled by the server's first SETTINGS frame (its preface), or by the connection ending before it. */
  readonly #ready: Promise<void>;
  #settled: ((err?: Error) => void) | undefined;

  private constructor(socket: net.Socket) {
    this.#socket = socket;
    this.#ready = new Promise((resolve, reject) => {
      this.#settled = (err) => (err ? reject(err) : resolve());
    });
    socket.on("data", (chunk: Buffer) => this.#onData(chunk));
    socket.on("close", () => this.#failAll("connection closed"));
    socket.on("error", () => this.#failAll("connection error"));
  }

  static connect(host: string, port: number): Promise<RawH2Connection> {
    return new Promise((resolve, reject) => {
      const socket = net.connect({ host, port, noDelay: true });
      socket.once("error", reject);
      socket.once("connect", () => {
        socket.off("error", reject);
        // SETTINGS: ENABLE_PUSH 0, INITIAL_WINDOW_SIZE max; then open the connection window as far.
        const settings = Buffer.alloc(12);
        settings.writeUInt16BE(0x2, 0);
        settings.writeUInt32BE(0, 2);
        settings.writeUInt16BE(0x4, 6);
        settings.writeUInt32BE(BIG_WINDOW, 8);
        const window = Buffer.alloc(4);
        window.writeUInt32BE(BIG_WINDOW - 65_535, 0);
        socket.write(Buffer.concat([PREFACE, frame(SETTINGS, 0, 0, settings), frame(0x8, 0, 0, window)]));
        // Ready once the server's SETTINGS are known: a burst sent before them could exceed its stream limit.
        const connection = new RawH2Connection(socket);
        connection.#ready.then(() => resolve(connection), reject);
      });
    });
  }

  /** The fixed part of a request's header block, built once per path. */
  static headerBlock(authority: string, path: string, contentType: string, grpc: boolean): Buffer {
    return Buffer.concat([
      Buffer.from([0x83, 0x86]), // :method POST, :scheme http (static indexes 3 and 6)
      literal(0x04, undefined, path), // :path
      literal(0x01, undefined, authority), // :authority
      Buffer.from([0x0f, 0x10]), // content-type is static index 31: 15 in the 4-bit prefix, then 16
      str(contentType),
      ...(grpc ? [literal(0, "te", "trailers")] : []),
    ]);
  }

  request(block: Buffer, extraHeaders: readonly [string, string][], body: Buffer): Promise<RawReply> {
    // A request written to a connection that is gone would wait for an answer for ever (and the generator's
    // process with it, until Node exits with 13 for an unsettled top-level await): it fails at once instead.
    if (this.#gone !== undefined)
      return Promise.resolve({ ok: false, body: Buffer.alloc(0), why: this.#gone });
    return new Promise((resolve) => {
      if (this.#pending.size < this.#maxStreams && this.#queueHead === this.#queue.length)
        this.#open(block, extraHeaders, body, resolve);
      else this.#queue.push({ block, extraHeaders, body, resolve });
    });
  }

  /** Requests waiting for a stream (for tests and diagnostics). */
  get queued(): number {
    return this.#queue.length - this.#queueHead;
  }

  #open(
    block: Buffer,
    extraHeaders: readonly [string, string][],
    body: Buffer,
    resolve: (reply: RawReply) => void,
  ): void {
    const id = this.#nextStream;
    this.#nextStream += 2;
    const headers = Buffer.concat([block, ...extraHeaders.map(([n, v]) => literal(0, n, v))]);
    // END_HEADERS (0x4) on the headers; the body ends the stream.
    const out = Buffer.concat([frame(HEADERS, 0x4, id, headers), frame(DATA, END_STREAM, id, body)]);
    // Requests issued in the same tick go out in one write.
    if (!this.#corked) {
      this.#corked = true;
      this.#socket.cork();
      process.nextTick(() => {
        this.#corked = false;
        this.#socket.uncork();
      });
    }
    this.#socket.write(out);
    this.#pending.set(id, { resolve, status: 0, chunks: [], gotHeaders: false });
  }

  /** Opens queued requests while there is room under the server's limit. */
  #drain(): void {
    while (this.#queueHead < this.#queue.length && this.#pending.size < this.#maxStreams) {
      const q = this.#queue[this.#queueHead++] as Queued;
      this.#open(q.block, q.extraHeaders, q.body, q.resolve);
    }
    if (this.#queueHead === this.#queue.length && this.#queueHead > 0) {
      this.#queue = [];
      this.#queueHead = 0;
    }
  }

  close(): void {
    this.#socket.destroy();
  }

  #onData(chunk: Buffer): void {
    this.#buffer = this.#buffer.length === 0 ? chunk : Buffer.concat([this.#buffer, chunk]);
    let at = 0;
    while (this.#buffer.length - at >= 9) {
      const length = this.#buffer.readUIntBE(at, 3);
      if (this.#buffer.length - at < 9 + length) break;
      const type = this.#buffer.readUInt8(at + 3);
      const flags = this.#buffer.readUInt8(at + 4);
      const stream = this.#buffer.readUInt32BE(at + 5) & 0x7fff_ffff;
      const payload = this.#buffer.subarray(at + 9, at + 9 + length);
      at += 9 + length;
      this.#onFrame(type, flags, stream, payload);
    }
    this.#buffer = at === this.#buffer.length ? Buffer.alloc(0) : this.#buffer.subarray(at);
  }

  #onFrame(type: number, flags: number, stream: number, payload: Buffer): void {
    switch (type) {
      case SETTINGS:
        if (flags & ACK) return;
        for (let at = 0; at + 6 <= payload.length; at += 6)
          if (payload.readUInt16BE(at) === SETTINGS_MAX_CONCURRENT_STREAMS)
            this.#maxStreams = payload.readUInt32BE(at + 2);
        this.#socket.write(frame(SETTINGS, ACK, 0, Buffer.alloc(0)));
        this.#settled?.();
        this.#settled = undefined;
        this.#drain();
        return;
      case PING:
        if (!(flags & ACK)) this.#socket.write(frame(PING, ACK, 0, payload));
        return;
      case GOAWAY:
        this.#failAll("GOAWAY");
        return;
      case RST_STREAM:
        this.#finish(stream, false, "RST_STREAM");
        return;
      case HEADERS: {
        const p = this.#pending.get(stream);
        if (!p) return;
        if (!p.gotHeaders) {
          p.gotHeaders = true;
          const padded = flags & PADDED ? 1 : 0;
          const priority = flags & 0x20 ? 5 : 0;
          p.status = payload[padded + priority] ?? 0;
        }
        if (flags & END_STREAM) this.#finish(stream, true);
        return;
      }
      case DATA: {
        const p = this.#pending.get(stream);
        this.#received += payload.length;
        if (this.#received > 1 << 30) {
          const window = Buffer.alloc(4);
          window.writeUInt32BE(this.#received, 0);
          this.#socket.write(frame(0x8, 0, 0, window));
          this.#received = 0;
        }
        if (!p) return;
        const pad = flags & PADDED ? (payload[0] ?? 0) : -1;
        p.chunks.push(pad >= 0 ? payload.subarray(1, payload.length - pad) : payload);
        if (flags & END_STREAM) this.#finish(stream, true);
        return;
      }
      default:
        return;
    }
  }

  #finish(stream: number, complete: boolean, why?: string): void {
    const p = this.#pending.get(stream);
    if (!p) return;
    this.#pending.delete(stream);
    if (this.#gone === undefined) this.#drain();
    const body = p.chunks.length === 1 ? (p.chunks[0] as Buffer) : Buffer.concat(p.chunks);
    const ok = complete && p.status === 0x88 && body.length > 0;
    p.resolve(
      ok
        ? { ok, body }
        : {
            ok,
            body,
            why:
              why ??
              `status byte 0x${p.status.toString(16)} (0x88 is 200), ${body.length} body bytes: ${body.toString("utf8").slice(0, 200)}`,
          },
    );
  }

  #failAll(why: string): void {
    this.#gone ??= why;
    this.#settled?.(new Error(`HTTP/2 connection ended before the server's SETTINGS: ${why}`));
    this.#settled = undefined;
    for (const id of [...this.#pending.keys()]) this.#finish(id, false, why);
    const waiting = this.#queue.slice(this.#queueHead);
    this.#queue = [];
    this.#queueHead = 0;
    for (const q of waiting) q.resolve({ ok: false, body: Buffer.alloc(0), why });
  }
}
