import { AsyncLocalStorage } from "node:async_hooks";
import type { IncomingMessage, Server, ServerResponse } from "node:http";
import type { Http2Server, Http2ServerRequest, Http2ServerResponse, ServerHttp2Stream } from "node:http2";
import { Command } from "ioredis";

/**
 * Counts the sequential Redis round trips each request waits on, whatever the request path does (stores, rate
 * limiters, scripts, pipelines, any ioredis client in the process).
 *
 * Every ioredis command is a `Command` created in the caller's async context, so hooking its construction sees
 * every command and, through AsyncLocalStorage, the request it belongs to. A command's depth is one more than
 * the deepest command of the same request whose reply had already arrived when it was issued: commands issued
 * together (auto-pipelined, Promise.all) share a depth, a command issued after awaiting another's reply goes one
 * deeper. The request's round trips are its deepest command: the critical path through Redis.
 */
interface Trace {
  /** Deepest depth whose reply has arrived. */
  settled: number;
  /** Deepest depth issued. */
  depth: number;
  commands: number;
  /** `settled` when the response was written: the round trips the answer waited on. */
  answered: number | undefined;
  /** A stream's trace only: Node's compatibility layer made a request of it, which has a trace of its own. */
  handedOn?: boolean;
}

export interface RoundTripStats {
  requests: number;
  /** Requests that issued at least one command. */
  withRedis: number;
  /** Round trips the answers waited on (see `traceRequests`). */
  sumDepth: number;
  maxDepth: number;
  sumCommands: number;
  /** waited depth -> requests. */
  histogram: Record<number, number>;
  /** Commands issued outside any traced request (start-up, or a context the tracer lost). */
  untraced: number;
}

const als = new AsyncLocalStorage<Trace>();
let stats = emptyStats();

function emptyStats(): RoundTripStats {
  return {
    requests: 0,
    withRedis: 0,
    sumDepth: 0,
    maxDepth: 0,
    sumCommands: 0,
    histogram: {},
    untraced: 0,
  };
}

/** Takes the counts since the last call and starts afresh. */
export function takeRoundTripStats(): RoundTripStats {
  const s = stats;
  stats = emptyStats();
  return s;
}

let installed = false;

/** Hooks ioredis's Command construction; once per process, before any client is used. */
export function instrumentRedisCommands(): void {
  if (installed) return;
  installed = true;
  // `initPromise` is private in the typings; it runs once per command, from the constructor.
  const proto = Command.prototype as unknown as { initPromise(this: Command): void };
  const original = proto.initPromise;
  proto.initPromise = function (this: Command) {
    original.call(this);
    const trace = als.getStore();
    if (!trace) {
      stats.untraced += 1;
      return;
    }
    const depth = trace.settled + 1;
    trace.commands += 1;
    if (depth > trace.depth) trace.depth = depth;
    const settle = () => {
      if (depth > trace.settled) trace.settled = depth;
    };
    // A second handler on the command's own promise: it sees the reply without changing what callers see.
    this.promise.then(settle, settle);
  };
}

type Listener = (
  req: IncomingMessage | Http2ServerRequest,
  res: ServerResponse | Http2ServerResponse,
) => void;

/**
 * Runs every request of this server inside its own trace and records it when the response is finished. On an
 * HTTP/2 server every stream is traced too, for a handler that takes streams before Node's compatibility layer
 * makes requests of them (the gRPC fast path); a stream the layer does make a request of is recorded as that
 * request, once.
 */
export function traceRequests(server: Server | Http2Server): void {
  const listeners = server.listeners("request") as Listener[];
  server.removeAllListeners("request");
  if (server.listenerCount("stream") > 0) traceStreams(server as Http2Server);
  server.on(
    "request",
    (req: IncomingMessage | Http2ServerRequest, res: ServerResponse | Http2ServerResponse) => {
      const stream = als.getStore();
      if (stream) stream.handedOn = true;
      const trace: Trace = { settled: 0, depth: 0, commands: 0, answered: undefined };
      res.once("finish", () => record(trace));
      // What the answer waited on: the round trips whose replies had arrived when it was written. A write the
      // handler issues and does not wait for (a record made after the answer) goes deeper without delaying it.
      // The answer starts with `res.end` (HTTP/1.1, and HTTP/2's compatibility API) or, for a handler that
      // writes to the HTTP/2 stream itself (the gRPC fast path), with the stream's `respond`.
      const answered = () => {
        trace.answered ??= trace.settled;
      };
      before(res, "end", answered);
      if ("stream" in res) before(res.stream, "respond", answered);
      // A handler that works in the request's event callbacks ('data', 'end') would otherwise run in the
      // socket's context, not the request's: emit every event of the request inside its trace.
      const emit = req.emit;
      req.emit = function (this: typeof req, ...args: Parameters<typeof emit>) {
        return als.run(trace, () => emit.apply(this, args));
      } as typeof emit;
      als.run(trace, () => {
        for (const l of listeners) l.call(server, req, res);
      });
    },
  );
}

type StreamListener = (stream: ServerHttp2Stream, ...rest: unknown[]) => void;

function traceStreams(server: Http2Server): void {
  const listeners = server.listeners("stream") as StreamListener[];
  server.removeAllListeners("stream");
  server.on("stream", (stream: ServerHttp2Stream, ...rest: unknown[]) => {
    const trace: Trace = { settled: 0, depth: 0, commands: 0, answered: undefined };
    before(stream, "respond", () => {
      trace.answered ??= trace.settled;
    });
    stream.once("close", () => {
      if (!trace.handedOn) record(trace);
    });
    // As for requests: the handler works in the stream's event callbacks, which run in the session's context.
    const emit = stream.emit;
    stream.emit = function (this: typeof stream, ...args: Parameters<typeof emit>) {
      return als.run(trace, () => emit.apply(this, args));
    } as typeof emit;
    als.run(trace, () => {
      for (const l of listeners) l.call(server, stream, ...rest);
    });
  });
}

/** Calls `hook` before every call of `obj[name]`. */
function before(obj: object, name: string, hook: () => void): void {
  const target = obj as Record<string, (...args: unknown[]) => unknown>;
  const original = target[name];
  if (typeof original !== "function") return;
  target[name] = function (this: unknown, ...args: unknown[]) {
    hook();
    return original.apply(this, args);
  };
}

function record(trace: Trace): void {
  const waited = trace.answered ?? trace.depth;
  stats.requests += 1;
  if (trace.commands > 0) stats.withRedis += 1;
  stats.sumDepth += waited;
  stats.sumCommands += trace.commands;
  if (waited > stats.maxDepth) stats.maxDepth = waited;
  stats.histogram[waited] = (stats.histogram[waited] ?? 0) + 1;
}
