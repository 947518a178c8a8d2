import http from "node:http";
import http2 from "node:http2";
import type { AddressInfo } from "node:net";
import { Redis } from "ioredis";
import { afterAll, beforeAll, expect, it } from "vitest";
import { instrumentRedisCommands, takeRoundTripStats, traceRequests } from "../bench/server/round-trips.js";
import { describeWithRedis } from "./support/redis.js";
import { until } from "./support/wait.js";

// The bench's round-trip counter, checked against request paths whose sequential Redis waits are known. It
// patches ioredis for the whole process, which is why it lives in a file of its own (vitest isolates files).
describeWithRedis("bench round-trip tracer", (redis) => {
  let client: Redis & { benchEcho(key: string): Promise<string> };
  let h1: http.Server;
  let h2: http2.Http2Server;
  let h2Url: string;
  let h1Url: string;

  const paths: Record<string, () => Promise<unknown>> = {
    "/none": async () => undefined,
    "/one": () => client.get("k"),
    "/together": () => Promise.all([client.get("k"), client.set("k", "v"), client.hgetall("h")]),
    "/chain": async () => {
      await client.get("k");
      await Promise.all([client.get("a"), client.get("b")]);
      await client.set("k", "v");
    },
    "/script-then-pipeline": async () => {
      await client.benchEcho("k");
      await client.pipeline().get("k").set("k", "w").exec();
    },
    // A write issued with the answer, not waited for: the answer waited on one round trip of the two.
    "/after-answer": async () => {
      await client.get("k");
      void client.set("k", "after");
    },
    // A command issued later but before the first reply arrives overlaps it: still one wait.
    "/overlap": async () => {
      const first = client.get("k");
      await Promise.resolve();
      await Promise.all([first, client.get("k")]);
    },
  };
  const handler = (
    req: http.IncomingMessage | http2.Http2ServerRequest,
    res: http.ServerResponse | http2.Http2ServerResponse,
  ) => {
    const fn = paths[req.url ?? ""];
    if (!fn) {
      res.writeHead(404).end();
      return;
    }
    // The body is read first, as real handlers do: the trace must survive the stream's events.
    req.on("data", () => {});
    req.on("end", () => {
      fn().then(
        () => res.writeHead(200).end("ok"),
        (err: Error) => res.writeHead(500).end(err.message),
      );
    });
  };

  beforeAll(async () => {
    instrumentRedisCommands();
    // The URL carries the run's key prefix: "k", "a", "b" and "h" below are never someone else's keys.
    client = new Redis(redis.url, { enableAutoPipelining: true }) as typeof client;
    client.defineCommand("benchEcho", { numberOfKeys: 1, lua: "return KEYS[1]" });
    await client.ping();
    h1 = http.createServer(handler);
    h2 = http2.createServer(handler);
    // A stream taken before Node's compatibility layer and answered on the stream itself, as OnePortServer
    // offers every stream to the gRPC fast path; every other stream goes on to the layer.
    const compat = h2.listeners("stream") as ((...args: unknown[]) => void)[];
    h2.removeAllListeners("stream");
    h2.on(
      "stream",
      (stream: http2.ServerHttp2Stream, headers: http2.IncomingHttpHeaders, ...rest: unknown[]) => {
        if (headers[":path"] !== "/stream-answer") {
          for (const l of compat) l.call(h2, stream, headers, ...rest);
          return;
        }
        stream.on("data", () => {});
        stream.on("end", async () => {
          await client.get("k");
          void client.set("k", "after");
          stream.respond({ ":status": 200 });
          stream.end("ok");
        });
      },
    );
    traceRequests(h1);
    traceRequests(h2);
    await new Promise<void>((r) => h1.listen(0, "127.0.0.1", r));
    await new Promise<void>((r) => h2.listen(0, "127.0.0.1", r));
    h1Url = `http://127.0.0.1:${(h1.address() as AddressInfo).port}`;
    h2Url = `http://127.0.0.1:${(h2.address() as AddressInfo).port}`;
  });
  afterAll(async () => {
    h1?.close();
    h2?.close();
    await client?.quit();
  });

  async function viaH1(path: string): Promise<void> {
    const res = await fetch(`${h1Url}${path}`, { method: "POST", body: "x".repeat(100) });
    expect(res.status).toBe(200);
    await res.text();
  }

  async function viaH2(path: string): Promise<void> {
    const session = http2.connect(h2Url);
    try {
      await new Promise<void>((resolve, reject) => {
        const stream = session.request({ ":method": "POST", ":path": path });
        stream.on("response", (h) =>
          h[":status"] === 200 ? undefined : reject(new Error(String(h[":status"]))),
        );
        stream.on("data", () => {});
        stream.on("end", resolve);
        stream.on("error", reject);
        stream.end("x".repeat(100));
      });
    } finally {
      session.close();
    }
  }

  const expected: [string, number, number][] = [
    ["/none", 0, 0],
    ["/one", 1, 1],
    ["/together", 1, 3],
    ["/chain", 3, 4],
    ["/script-then-pipeline", 2, 3],
    ["/overlap", 1, 2],
    ["/after-answer", 1, 2],
  ];

  for (const [via, send] of [
    ["HTTP/1.1", viaH1],
    ["HTTP/2", viaH2],
  ] as const) {
    it.each(expected)(
      `${via} %s waits on %i round trip(s) and sends %i command(s)`,
      async (path, depth, commands) => {
        takeRoundTripStats();
        await send(path);
        // The response's "finish" can come a moment after the client has the body.
        const stats = await until(
          () => {
            const taken = takeRoundTripStats();
            return taken.requests > 0 && taken;
          },
          { what: "the request to finish", timeoutMs: 5_000, intervalMs: 10 },
        );
        expect(stats).toMatchObject({
          requests: 1,
          maxDepth: depth,
          sumDepth: depth,
          sumCommands: commands,
          untraced: 0,
        });
      },
    );
  }

  it("HTTP/2 answered on the stream itself: waits on 1 round trip of the 2 it issues", async () => {
    takeRoundTripStats();
    await viaH2("/stream-answer");
    const stats = await until(
      () => {
        const taken = takeRoundTripStats();
        return taken.requests > 0 && taken;
      },
      { what: "the request to finish", timeoutMs: 5_000, intervalMs: 10 },
    );
    expect(stats).toMatchObject({ requests: 1, maxDepth: 1, sumDepth: 1, sumCommands: 2, untraced: 0 });
  });
});
