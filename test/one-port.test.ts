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

/** Resolves with what the server sent once it closes the connection, or rejects after `ms`. */
function untilClosed(socket: net.Socket, ms: number): Promise<string> {
  let got = "";
  socket.on("data", (d: Buffer) => (got += d.toString()));
  return new Promise((resolve, reject) => {
    const timer = setTimeout(() => reject(new Error(`still open after ${ms} ms`)), ms);
    socket.once("close", () => {
      clearTimeout(timer);
      resolve(got);
    });
  });
}

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
    const answer = await closed;
    expect(answer).not.toMatch(/HTTP\/1\.1/);
  });

  it("drops a client that trickles its headers (slowloris) after headersTimeout", async () => {
    const port = await start({ headersTimeoutMs: 300, requestTimeoutMs: 600, checkIntervalMs: 50 });
    const socket = net.connect(port, "127.0.0.1");
    await new Promise((r) => socket.once("connect", r));
    socket.write("GET / HTTP/1.1\r\nHost: x\r\n");
    const answer = await untilClosed(socket, 10_000);
    expect(answer).toMatch(/^HTTP\/1\.1 408/);
  });

  it("drops a connection that never says anything", async () => {
    const port = await start();
    const socket = net.connect(port, "127.0.0.1");
    // The dispatch waits 10 s for a first byte; allow a loaded machine plenty on top.
    await expect(untilClosed(socket, 25_000)).resolves.toBe("");
  }, 40_000);
});
