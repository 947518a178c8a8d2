import { writeFileSync } from "node:fs";
import type { Server } from "node:http";
import type { Http2Server } from "node:http2";
import { Session } from "node:inspector/promises";
import { monitorEventLoopDelay, PerformanceObserver } from "node:perf_hooks";
import { BenchSinkSms } from "./sink-sms.js";

/**
 * The bench-only entrypoint, run as compiled JavaScript and only by `bench/run.ts` (it needs the IPC channel
 * the driver opens, and refuses to start without it). Modes:
 *   service             the real service (`buildApp`, production code paths) with the bench SMS sink
 *   connect-noop        the same one-port connect-node stack with no-op handlers
 *   grpcjs-noop         a @grpc/grpc-js server with the same no-op handlers
 *   grpcjs-verify-floor VerifyOtp's unavoidable work on @grpc/grpc-js (see verify-floor.ts)
 *   http-send-floor     SendOtp's unavoidable work on node:http (see send-floor.ts)
 *   express-equivalent  SendOtp as a team would write it in express (see express-equivalent.ts)
 *   http-redis          bare node:http and one Redis round trip per request
 * The parent asks over IPC for CPU time, memory, round-trip counts, the codes the sink recorded, and (soak)
 * event-loop delay, and (BENCH_CPU_PROF=1, BENCH_ALLOC_PROF=1) for a CPU or allocation profile of one measured run:
 * started and stopped over IPC, so the codes a VerifyOtp run is prepared with (sent over Connect) and the
 * warm-up stay out of it.
 *
 * BENCH_TRACE=1 counts Redis round trips per request (round-trips.ts: AsyncLocalStorage around every request
 * and a hook on every ioredis command). That costs CPU, so the driver runs the throughput rounds without it and
 * counts round trips in a separate, short run of a traced process.
 */
type Request =
  | { id: number; op: "stats" }
  | { id: number; op: "record"; on: boolean }
  | { id: number; op: "codes" }
  | { id: number; op: "sample" }
  | { id: number; op: "profile"; kind: ProfileKind; file?: string };
type ProfileKind = "cpu" | "alloc";

const send = process.send?.bind(process);
if (!send) {
  process.stderr.write("bench server: run me through `npm run bench`, not directly\n");
  process.exit(2);
}

const mode = process.argv[2];
const port = Number(process.env.BENCH_PORT ?? "0");
const host = "127.0.0.1";
const sink = new BenchSinkSms();
// Loaded only when tracing: an AsyncLocalStorage that is never entered costs nothing, but none at all is surer.
const tracer = process.env.BENCH_TRACE === "1" ? await import("./round-trips.js") : undefined;
tracer?.instrumentRedisCommands();
const trace = (...servers: (Server | Http2Server)[]) => {
  for (const s of servers) tracer?.traceRequests(s);
};
let close: () => Promise<void>;
/** The floors' Redis client: the service's (one socket write per turn, no auto-pipelining); a floor quits it. */
async function floorRedis() {
  const { OneWritePerTurnRedis } = await import("../../src/redis/one-write-per-turn.js");
  return new OneWritePerTurnRedis(process.env.REDIS_URL ?? "redis://127.0.0.1:6379", {
    enableAutoPipelining: false,
  });
}
let boundPort: number;

// Each mode imports only what its server needs, so a process carries the memory of its own server alone (the
// service's RSS is then the production process's, not that plus express and grpc-js).
if (mode === "service") {
  const [{ buildApp }, { loadConfig }, { createLogger }] = await Promise.all([
    import("../../src/app.js"),
    import("../../src/config.js"),
    import("../../src/log.js"),
  ]);
  const config = loadConfig(process.env);
  // The production logger (redaction, the reqId mixin) at `info`, on stdout, which the driver sends to
  // /dev/null. No destination is passed, as src/main.ts passes none in production: whatever createLogger
  // writes to by default is what is measured.
  const log = createLogger({ production: true, level: process.env.LOG_LEVEL ?? "info" });
  const app = await buildApp(config, log, { sms: sink });
  trace(app.server.h1, app.server.h2);
  boundPort = (await app.server.listen(port, host)).port;
  close = () => app.close();
} else if (mode === "connect-noop") {
  const { connectNoopServer } = await import("./noop.js");
  const server = connectNoopServer();
  boundPort = (await server.listen(port, host)).port;
  close = () => server.close();
} else if (mode === "grpcjs-noop") {
  const { grpcJsNoopServer } = await import("./noop.js");
  const server = await grpcJsNoopServer(port, host);
  boundPort = port;
  close = () => new Promise((resolve) => server.tryShutdown(() => resolve()));
} else if (mode === "grpcjs-verify-floor") {
  const { startVerifyFloor } = await import("./verify-floor.js");
  const server = await startVerifyFloor(await floorRedis(), port, host);
  boundPort = port;
  close = () => server.close();
} else if (mode === "http-send-floor") {
  const { startSendFloor } = await import("./send-floor.js");
  const server = startSendFloor(await floorRedis(), process.env);
  trace(server.server);
  boundPort = await server.listen(port, host);
  close = () => server.close();
} else if (mode === "express-equivalent") {
  const { expressEquivalentServer } = await import("./express-equivalent.js");
  const server = expressEquivalentServer(process.env);
  trace(server.server);
  boundPort = await server.listen(port, host);
  close = () => server.close();
} else if (mode === "http-redis") {
  const { httpRedisServer } = await import("./http-redis.js");
  const server = httpRedisServer(process.env.REDIS_URL ?? "redis://127.0.0.1:6379");
  trace(server.server);
  boundPort = await server.listen(port, host);
  close = () => server.close();
} else {
  process.stderr.write(
    `bench server: unknown mode "${mode}" (service, connect-noop, grpcjs-noop, grpcjs-verify-floor, http-send-floor, express-equivalent, http-redis)\n`,
  );
  process.exit(2);
}

const ELD_RESOLUTION_MS = 10;
/** Soak only: the event-loop delay monitor, started by the first `sample`. */
let eld: ReturnType<typeof monitorEventLoopDelay> | undefined;
/** Soak only: the lowest heap used since the last `sample`, the floor GC leaves (a leak raises it). */
let heapFloor = Number.POSITIVE_INFINITY;

// Garbage-collection pauses since the last `stats`: how many, their total and the longest, for reading a
// latency tail against them.
let gc = { count: 0, totalMs: 0, maxMs: 0 };
new PerformanceObserver((list) => {
  for (const e of list.getEntries()) {
    gc.count += 1;
    gc.totalMs += e.duration;
    if (e.duration > gc.maxMs) gc.maxMs = e.duration;
  }
}).observe({ entryTypes: ["gc"] });

// Peak resident memory since the last `stats`, sampled often enough to catch a load run's plateau.
let peakRss = process.memoryUsage.rss();
setInterval(() => {
  peakRss = Math.max(peakRss, process.memoryUsage.rss());
  if (eld) heapFloor = Math.min(heapFloor, process.memoryUsage().heapUsed);
}, 100).unref();

/** The inspector session of a profile in progress (`profile` without a file starts one, with a file ends it). */
let profiler: { session: Session; kind: ProfileKind } | undefined;
/**
 * cpu: V8's sampling CPU profile. alloc: the sampling heap profiler with the objects garbage collection took
 * kept in, so it tells where a request's allocations (what the scavenges pay for) come from, not only what
 * lives on.
 */
async function profile(kind: ProfileKind, file: string | undefined): Promise<void> {
  if (file === undefined) {
    const session = new Session();
    session.connect();
    if (kind === "cpu") {
      await session.post("Profiler.enable");
      await session.post("Profiler.start");
    } else {
      await session.post("HeapProfiler.enable");
      await session.post("HeapProfiler.startSampling", {
        samplingInterval: 4096,
        includeObjectsCollectedByMajorGC: true,
        includeObjectsCollectedByMinorGC: true,
      });
    }
    profiler = { session, kind };
    return;
  }
  if (!profiler) throw new Error("no profile in progress");
  const { session } = profiler;
  const { profile } =
    profiler.kind === "cpu"
      ? await session.post("Profiler.stop")
      : await session.post("HeapProfiler.stopSampling");
  await session.post(profiler.kind === "cpu" ? "Profiler.disable" : "HeapProfiler.disable");
  session.disconnect();
  profiler = undefined;
  writeFileSync(file, JSON.stringify(profile));
}

process.on("message", (msg: Request) => {
  switch (msg.op) {
    case "stats": {
      const cpu = process.cpuUsage();
      const rss = process.memoryUsage.rss();
      send({
        id: msg.id,
        cpuMicros: cpu.user + cpu.system,
        rss,
        peakRss: Math.max(peakRss, rss),
        // null when not tracing: the driver takes round trips from the traced run only.
        rt: tracer ? tracer.takeRoundTripStats() : null,
        gc,
      });
      peakRss = rss;
      gc = { count: 0, totalMs: 0, maxMs: 0 };
      break;
    }
    case "record":
      sink.recording = msg.on;
      send({ id: msg.id });
      break;
    case "codes":
      send({ id: msg.id, codes: sink.take() });
      break;
    case "sample": {
      // Soak: memory now and the event loop's delay since the last sample (the first starts the monitor).
      const mem = process.memoryUsage();
      // The histogram records the time between its timer's ticks, the resolution included: the delay is beyond it.
      const ms = (ns: number) => Math.max(0, ns / 1e6 - ELD_RESOLUTION_MS);
      send({
        id: msg.id,
        rss: mem.rss,
        heapUsed: mem.heapUsed,
        heapTotal: mem.heapTotal,
        heapFloor: Math.min(heapFloor, mem.heapUsed),
        peakRss: Math.max(peakRss, mem.rss),
        eld: eld
          ? { p50Ms: ms(eld.percentile(50)), p99Ms: ms(eld.percentile(99)), maxMs: ms(eld.max) }
          : null,
      });
      eld ??= monitorEventLoopDelay({ resolution: ELD_RESOLUTION_MS });
      eld.enable();
      eld.reset();
      peakRss = mem.rss;
      heapFloor = Number.POSITIVE_INFINITY;
      break;
    }
    case "profile":
      profile(msg.kind, msg.file).then(
        () => send({ id: msg.id }),
        (err: unknown) => send({ id: msg.id, error: String(err) }),
      );
      break;
  }
});
process.on("disconnect", () => {
  void close().finally(() => process.exit(0));
});
send({ ready: true, port: boundPort });
