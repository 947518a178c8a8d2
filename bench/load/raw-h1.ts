import net from "node:net";
import { performance } from "node:perf_hooks";
import type { RawReply } from "./raw-h2.js";

/**
 * A minimal HTTP/1.1 keep-alive client for load generation: one request at a time per connection, the
 * request written as one buffer, the response read by its Content-Length (the service always sends one).
 * node:http's client costs about as much CPU per request as the server it loads; this one does not.
 */
class RawH1Connection {
  readonly #socket: net.Socket;
  #buffer: Buffer = Buffer.alloc(0);
  #waiting: ((reply: RawReply) => void) | undefined;
  /** Why the connection can take no more requests; undefined while it can. */
  #gone: string | undefined;
  /** When its last answer arrived (or it connected): how long it has been idle. */
  #idleSince = performance.now();

  constructor(socket: net.Socket) {
    this.#socket = socket;
    socket.on("data", (chunk: Buffer) => this.#onData(chunk));
    const fail = (why: string) => () => {
      this.#gone ??= why;
      const w = this.#waiting;
      this.#waiting = undefined;
      w?.({ ok: false, body: Buffer.alloc(0), why });
    };
    socket.on("close", fail("connection closed"));
    socket.on("error", fail("connection error"));
  }

  request(head: string, body: Buffer): Promise<RawReply> {
    // The pool hands a connection that just failed to the next request in line: written to a closed socket,
    // that request would wait for ever (and the generator's process with it, until Node exits with 13 for an
    // unsettled top-level await). It fails at once, with the reason.
    if (this.#gone !== undefined)
      return Promise.resolve({ ok: false, body: Buffer.alloc(0), why: this.#gone });
    return new Promise((resolve) => {
      this.#waiting = resolve;
      this.#socket.write(Buffer.concat([Buffer.from(head, "latin1"), body]));
    });
  }

  /** Closed, or idle long enough that the server may be closing it as it is written to. */
  stale(maxIdleMs: number): boolean {
    return this.#gone !== undefined || performance.now() - this.#idleSince > maxIdleMs;
  }

  close(): void {
    this.#socket.destroy();
  }

  #onData(chunk: Buffer): void {
    this.#buffer = this.#buffer.length === 0 ? chunk : Buffer.concat([this.#buffer, chunk]);
    const end = this.#buffer.indexOf("\r\n\r\n");
    if (end < 0) return;
    const head = this.#buffer.subarray(0, end).toString("latin1");
    const length = /\r\ncontent-length: *(\d+)/i.exec(head);
    const w = this.#waiting;
    if (!length) {
      this.#gone = "the connection was dropped after an answer without content-length";
      this.#waiting = undefined;
      w?.({ ok: false, body: Buffer.alloc(0), why: `no content-length: ${head.slice(0, 200)}` });
      this.#socket.destroy();
      return;
    }
    const total = end + 4 + Number(length[1]);
    if (this.#buffer.length < total) return;
    const body = this.#buffer.subarray(end + 4, total);
    this.#buffer = this.#buffer.subarray(total);
    this.#waiting = undefined;
    this.#idleSince = performance.now();
    const ok = head.startsWith("HTTP/1.1 200 ");
    w?.(
      ok
        ? { ok, body }
        : { ok, body, why: `${head.split("\r\n", 1)[0]} ${body.toString("utf8").slice(0, 200)}` },
    );
  }
}

/**
 * Servers close connections that sit idle: ours a connection that has sent nothing for 10 s, and a keep-alive
 * one after 65 s (node's default is 5 s). A request written as the server closes gets a reset, which a real
 * client avoids by not reusing a connection idle that long. In an open-loop run at a modest rate most of the
 * pool sits idle, so such a connection is replaced by a new one before use.
 */
export const MAX_IDLE_REUSE_MS = 4_000;

/** `size` keep-alive connections; a request waits for an idle one. */
export class RawH1Pool {
  readonly #idle: RawH1Connection[] = [];
  readonly #all: RawH1Connection[] = [];
  readonly #queue: ((c: RawH1Connection) => void)[] = [];

  private constructor(
    readonly authority: string,
    private readonly open: () => Promise<RawH1Connection>,
    private readonly maxIdleMs: number,
  ) {}

  static async connect(
    host: string,
    port: number,
    size: number,
    maxIdleMs = MAX_IDLE_REUSE_MS,
  ): Promise<RawH1Pool> {
    const pool = new RawH1Pool(`${host}:${port}`, () => open(host, port), maxIdleMs);
    const conns = await Promise.all(Array.from({ length: size }, () => open(host, port)));
    pool.#all.push(...conns);
    pool.#idle.push(...conns);
    return pool;
  }

  async request(path: string, headers: readonly [string, string][], body: Buffer): Promise<RawReply> {
    let conn = this.#idle.pop() ?? (await new Promise<RawH1Connection>((r) => this.#queue.push(r)));
    if (conn.stale(this.maxIdleMs)) {
      conn.close();
      try {
        const fresh = await this.open();
        this.#all[this.#all.indexOf(conn)] = fresh;
        conn = fresh;
      } catch (err) {
        // Back in the pool as it is (stale), to be replaced by the next request that takes it.
        this.#release(conn);
        return { ok: false, body: Buffer.alloc(0), why: `reconnect failed: ${String(err)}` };
      }
    }
    const lines = headers.map(([n, v]) => `${n}: ${v}\r\n`).join("");
    const head = `POST ${path} HTTP/1.1\r\nhost: ${this.authority}\r\ncontent-type: application/json\r\ncontent-length: ${body.length}\r\n${lines}\r\n`;
    try {
      return await conn.request(head, body);
    } finally {
      this.#release(conn);
    }
  }

  #release(conn: RawH1Connection): void {
    const next = this.#queue.shift();
    if (next) next(conn);
    else this.#idle.push(conn);
  }

  close(): void {
    for (const c of this.#all) c.close();
  }
}

function open(host: string, port: number): Promise<RawH1Connection> {
  return new Promise<RawH1Connection>((resolve, reject) => {
    const socket = net.connect({ host, port, noDelay: true });
    socket.once("error", reject);
    socket.once("connect", () => {
      socket.off("error", reject);
      resolve(new RawH1Connection(socket));
    });
  });
}
