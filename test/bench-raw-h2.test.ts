import http2 from "node:http2";
import type { AddressInfo } from "node:net";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { RawH2Connection } from "../bench/load/raw-h2.js";

// The bench's HTTP/2 load generator against a server that allows 2 streams at a time and holds every request
// until told to answer: the generator keeps within the limit and sends the rest as streams finish. A client
// that ignored the limit would have its excess refused, and Node closes a session after 100 refusals.
describe("the bench's HTTP/2 client", () => {
  let server: http2.Http2Server;
  let port: number;
  const held: http2.ServerHttp2Stream[] = [];
  let open = 0;
  let mostOpen = 0;
  beforeAll(async () => {
    server = http2.createServer({ settings: { maxConcurrentStreams: 2 } });
    server.on("stream", (stream) => {
      open += 1;
      mostOpen = Math.max(mostOpen, open);
      stream.on("close", () => (open -= 1));
      stream.resume();
      stream.on("end", () => held.push(stream));
    });
    await new Promise<void>((resolve) => server.listen(0, "127.0.0.1", resolve));
    port = (server.address() as AddressInfo).port;
  });
  afterAll(() => new Promise<void>((resolve) => server.close(() => resolve())));

  const answerHeld = () => {
    for (const stream of held.splice(0)) {
      stream.respond({ ":status": 200 });
      stream.end("{}");
    }
  };

  it("keeps within the server's concurrent-stream limit and queues the rest", async () => {
    const connection = await RawH2Connection.connect("127.0.0.1", port);
    try {
      const block = RawH2Connection.headerBlock(`127.0.0.1:${port}`, "/", "application/json", false);
      const replies = Array.from({ length: 250 }, () => connection.request(block, [], Buffer.from("{}")));
      expect(connection.queued).toBe(248);
      let answered = 0;
      const settled = Promise.all(replies).then((r) => r);
      while (answered < 250) {
        await new Promise<void>((resolve) => setImmediate(resolve));
        answered += held.length;
        answerHeld();
      }
      const all = await settled;
      expect(all.filter((r) => !r.ok).map((r) => r.why)).toEqual([]);
      expect(mostOpen).toBe(2);
      expect(connection.queued).toBe(0);
    } finally {
      connection.close();
    }
  });
});
