import { createServer, type IncomingMessage, type Server } from "node:http";
import { connect } from "node:net";
import { afterEach, describe, expect, it } from "vitest";
import { HttpError, readBody } from "../src/http/json.js";

/** A server whose every request's body is read by `readBody`; the outcome of each read is handed out. */
function serve(maxBytes: number) {
  const outcomes: Promise<string>[] = [];
  const server = createServer((req: IncomingMessage, res) => {
    const read = readBody(req, maxBytes);
    outcomes.push(read);
    read.then(
      (body) => res.end(`got ${body.length}`),
      (err: unknown) => {
        if (err instanceof HttpError) res.writeHead(err.status, err.headers).end();
      },
    );
  });
  return { server, outcomes };
}

let server: Server | undefined;
afterEach(() => new Promise<void>((r) => (server ? server.close(() => r()) : r())));

async function listen(s: Server): Promise<number> {
  server = s;
  await new Promise<void>((r) => s.listen(0, "127.0.0.1", () => r()));
  const addr = s.address();
  if (addr === null || typeof addr === "string") throw new Error("no port");
  return addr.port;
}

describe("readBody", () => {
  it("joins a body that arrives in pieces", async () => {
    const { server: s } = serve(1024);
    const port = await listen(s);
    const sock = connect(port, "127.0.0.1");
    sock.write("POST / HTTP/1.1\r\nhost: x\r\ncontent-length: 6\r\nconnection: close\r\n\r\nabc");
    setTimeout(() => sock.write("def"), 50);
    let answer = "";
    for await (const chunk of sock) answer += String(chunk);
    expect(answer).toMatch(/^HTTP\/1\.1 200/);
    expect(answer).toMatch(/got 6$/);
  });

  it("answers a chunked body past the limit with 413 and closes the connection without reading on", async () => {
    const { server: s, outcomes } = serve(10);
    const port = await listen(s);
    const sock = connect(port, "127.0.0.1");
    sock.write("POST / HTTP/1.1\r\nhost: x\r\ntransfer-encoding: chunked\r\n\r\nb\r\nxxxxxxxxxxx\r\n");
    let answer = "";
    // Never sends the last chunk: the server must answer and close regardless.
    for await (const chunk of sock) answer += String(chunk);
    expect(answer).toMatch(/^HTTP\/1\.1 413/);
    expect(answer.toLowerCase()).toContain("connection: close");
    await expect(outcomes[0]).rejects.toMatchObject({ reason: "REQUEST_TOO_LARGE" });
  });

  it("rejects, rather than waiting for ever, when the caller hangs up mid-body", async () => {
    const { server: s, outcomes } = serve(1024);
    const port = await listen(s);
    const sock = connect(port, "127.0.0.1");
    sock.write("POST / HTTP/1.1\r\nhost: x\r\ncontent-length: 100\r\n\r\nonly a part");
    await expect.poll(() => outcomes.length).toBe(1);
    sock.destroy();
    await expect(outcomes[0]).rejects.toThrow();
  });
});
