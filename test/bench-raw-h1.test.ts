import { createServer, type Server } from "node:http";
import type { AddressInfo, Socket } from "node:net";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { RawH1Pool } from "../bench/load/raw-h1.js";

// The bench's HTTP/1.1 load generator against a server that closes idle keep-alive connections, as ours does
// (10 s before a first byte, 65 s between requests): a closed connection is replaced, never failed on.
describe("the bench's HTTP/1.1 pool", () => {
  let server: Server;
  let port: number;
  const sockets: Socket[] = [];
  beforeAll(async () => {
    server = createServer((_req, res) => {
      res.setHeader("content-length", "2");
      res.end("{}");
    });
    server.keepAliveTimeout = 100;
    server.on("connection", (s: Socket) => sockets.push(s));
    await new Promise<void>((resolve) => server.listen(0, "127.0.0.1", resolve));
    port = (server.address() as AddressInfo).port;
  });
  afterAll(() => new Promise<void>((resolve) => server.close(() => resolve())));

  const closed = (s: Socket) =>
    new Promise<void>((resolve) => (s.destroyed ? resolve() : s.once("close", resolve)));

  it("replaces a connection the server closed while it sat idle", async () => {
    const pool = await RawH1Pool.connect("127.0.0.1", port, 1, 50);
    try {
      expect((await pool.request("/", [], Buffer.from("{}"))).ok).toBe(true);
      // The server ends the idle keep-alive connection after its 100 ms.
      await Promise.all(sockets.map(closed));
      const again = await pool.request("/", [], Buffer.from("{}"));
      expect(again.why).toBeUndefined();
      expect(again.ok).toBe(true);
      expect(sockets).toHaveLength(2);
    } finally {
      pool.close();
    }
  });
});
