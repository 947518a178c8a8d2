import http2 from "node:http2";
import net from "node:net";
import { afterEach, describe, expect, it } from "vitest";
import type { Handler } from "../src/http/handler.js";
import { OnePortServer } from "../src/http/one-port.js";

const hello: Handler = (req, res) => {
  res.writeHead(200, { "content-type": "text/plain" });
  res.end(`hello over HTTP/${req.httpVersion}`);
};

let server: OnePortServer | undefined;
afterEach(async () => {
  await server?.close();
  server = undefined;
});

async function start(timeouts = {}) {
  server = new OnePortServer(hello, timeouts);
  return (await server.listen(0, "127.0.0.1")).port;
}

/** Resolves with the bytes the server sent once it closes the connection, or rejects after `ms`. */
function untilClosed(socket: net.Socket, ms: number): Promise<Buffer> {
  const got: Buffer[] = [];
  socket.on("data", (d: Buffer) => got.push(d));
  return new Promise((resolve, reject) => {
    const timer = setTimeout(() => reject(new Error(`still open after ${ms} ms`)), ms);
    socket.once("close", () => {
      clearTimeout(timer);
      resolve(Buffer.concat(got));
    });
  });
}

interface Frame {
  readonly type: number;
  readonly flags: number;
  readonly streamId: number;
  readonly payload: Buffer;
}

/** HTTP/2 frames (RFC 9113 §4.1: 24-bit length, type, flags, R bit + 31-bit stream id); throws on a torn one. */
function h2Frames(bytes: Buffer): Frame[] {
  const frames: Frame[] = [];
  let at = 0;
  while (at < bytes.length) {
    if (bytes.length - at < 9) throw new Error(`a torn frame header at byte ${at}: ${bytes.toString("hex")}`);
    const length = bytes.readUIntBE(at, 3);
    const end = at + 9 + length;
    if (end > bytes.length) throw new Error(`a frame of ${length} bytes cut short at byte ${at}`);
    frames.push({
      type: bytes[at + 3] as number,
      flags: bytes[at + 4] as number,
      streamId: bytes.readUInt32BE(at + 5) & 0x7fff_ffff,
      payload: bytes.subarray(at + 9, end),
    });
    at = end;
  }
  return frames;
}

const SETTINGS = 0x4;
const GOAWAY = 0x7;

describe("one port for HTTP/1.1 and cleartext HTTP/2", () => {
  it("serves HTTP/1.1 and prior-knowledge HTTP/2 on the same port", async () => {
    const port = await start();
    expect(await (await fetch(`http://127.0.0.1:${port}/`)).text()).toBe("hello over HTTP/1.1");
    const session = http2.connect(`http://127.0.0.1:${port}`);
    try {
      const body = await new Promise<string>((resolve, reject) => {
        const stream = session.request({ ":path": "/" });
        let text = "";
        stream.on("data", (d: Buffer) => (text += d.toString()));
        stream.on("end", () => resolve(text));
        stream.on("error", reject);
      });
      expect(body).toBe("hello over HTTP/2.0");
    } finally {
      session.close();
    }
  });

  it("decides on an HTTP/2 preface that arrives a byte at a time", async () => {
    const port = await start();
    const socket = net.connect(port, "127.0.0.1");
    await new Promise((r) => socket.once("connect", r));
    const closed = untilClosed(socket, 10_000);
    // A preface followed by garbage instead of a SETTINGS frame: the HTTP/2 server, not HTTP/1, must object.
    for (const byte of Buffer.from("PRI * HTTP/2.0\r\n\r\nSM\r\n\r\nnot a frame"))
      socket.write(Buffer.of(byte));
    // Not just "something other than HTTP/1": the server's connection preface, a SETTINGS frame on stream 0
    // (not an ACK, payload in 6-byte settings), and then a GOAWAY for the garbage, also on stream 0.
    const frames = h2Frames(await closed);
    const [settings] = frames;
    expect(settings).toMatchObject({ type: SETTINGS, streamId: 0 });
    expect((settings?.flags ?? 0) & 0x1).toBe(0);
    expect((settings?.payload.length ?? -1) % 6).toBe(0);
    const goaway = frames.at(-1);
    expect(goaway).toMatchObject({ type: GOAWAY, streamId: 0 });
    expect(goaway?.payload.length).toBeGreaterThanOrEqual(8);
  });

  it("drops a client that trickles its headers (slowloris) after headersTimeout", async () => {
    const port = await start({ headersTimeoutMs: 300, requestTimeoutMs: 600, checkIntervalMs: 50 });
    const socket = net.connect(port, "127.0.0.1");
    await new Promise((r) => socket.once("connect", r));
    socket.write("GET / HTTP/1.1\r\nHost: x\r\n");
    const answer = (await untilClosed(socket, 10_000)).toString("latin1");
    expect(answer).toMatch(/^HTTP\/1\.1 408/);
  });

  it("drops a connection that never says anything", async () => {
    const port = await start();
    const socket = net.connect(port, "127.0.0.1");
    // The dispatch waits 10 s for a first byte; allow a loaded machine plenty on top.
    expect(await untilClosed(socket, 25_000)).toHaveLength(0);
  }, 40_000);
});
