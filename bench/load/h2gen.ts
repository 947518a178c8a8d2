import { readFileSync } from "node:fs";
import { performance } from "node:perf_hooks";
import { create, type DescMessage, type MessageInitShape, toBinary } from "@bufbuild/protobuf";
import {
  RefreshTokenRequestSchema,
  SendOtpRequestSchema,
  VerifyOtpRequestSchema,
} from "../../gen/auth/v1/auth_pb.js";
import { clientIpAt, phoneAt } from "./phones.js";
import { RawH1Pool } from "./raw-h1.js";
import { RawH2Connection } from "./raw-h2.js";

/**
 * Our own load generator, for what h2load and wrk cannot do: a different body on every request over h2c
 * (Connect JSON and gRPC frames built from the generated schemas), a fixed request rate for latency at part
 * load, and a login flow that carries a token from one call to the next. Every response is checked: HTTP 200
 * with a body (a gRPC error is trailers-only, so it has none). Runs in its own process, pinned by the driver to
 * the load core; it speaks HTTP/2 and HTTP/1.1 through minimal clients of our own (raw-h2.ts, raw-h1.ts).
 *
 * Usage: tsx bench/load/h2gen.ts '<GenConfig as JSON>'; prints a GenResult as JSON.
 */
export interface GenConfig {
  readonly url: string;
  readonly protocol: "connect" | "grpc" | "rest";
  /** `flow`: SendOtp, VerifyOtp (a prepared code), RefreshToken (the token just issued), in turn. */
  readonly method: "SendOtp" | "VerifyOtp" | "flow";
  readonly durationMs: number;
  readonly concurrency: number;
  /** HTTP/2 connections the streams are spread over. */
  readonly sessions: number;
  /** Requests per second, open loop; absent: closed loop, as fast as the server answers. */
  readonly rate?: number;
  /**
   * Open loop only: run at `rate` for this long first, on the same connections, before `durationMs` is
   * measured. Its requests are checked like any other, but their latencies are reported apart
   * (`warmUpP99Ms`): they time this process's own cold start as much as the server.
   */
  readonly warmUpMs?: number;
  /** First phone index for SendOtp. */
  readonly phoneBase: number;
  /** Prepared `phone code` lines for VerifyOtp and flow; the run ends early when they run out. */
  readonly codesFile?: string;
  /** Send the same body every time (to compare with h2load, which cannot vary it). */
  readonly fixedBody?: boolean;
  /** Stop after this many units of work (closed loop only): preparing codes needs an exact count. */
  readonly count?: number;
}

export interface GenResult {
  readonly requests: number;
  readonly ok: number;
  /** Failed requests, the warm-up's included: a failure anywhere is reported. */
  readonly failed: number;
  readonly firstFailure?: string;
  readonly elapsedMs: number;
  readonly rps: number;
  readonly p50Ms: number;
  readonly p99Ms: number;
  /** The prepared codes ran out before the duration did. */
  readonly exhausted: boolean;
  /** p99 of the warm-up's requests alone (`warmUpMs`). */
  readonly warmUpP99Ms?: number;
}

interface Call {
  readonly path: string;
  readonly body: Buffer;
  readonly ip: string;
}

interface Reply {
  readonly ok: boolean;
  readonly body: Buffer;
  readonly why?: string;
}

const SERVICE = "/auth.v1.AuthService";
const restPaths = {
  SendOtp: "/api/v1/auth/send-otp",
  VerifyOtp: "/api/v1/auth/verify-otp",
  RefreshToken: "/api/v1/auth/refresh",
};
type Rpc = keyof typeof restPaths;

export async function run(cfg: GenConfig): Promise<GenResult> {
  const codes = cfg.codesFile
    ? readFileSync(cfg.codesFile, "utf8")
        .split("\n")
        .filter((l) => l !== "")
        .map((l) => l.split(" ") as [string, string])
    : [];
  let nextPhone = cfg.phoneBase;
  let nextCode = 0;
  // Addresses continue from this run's block of phones, so no two scenarios (or rounds) share a client
  // address and meet its per-IP limit.
  let nextIp = cfg.phoneBase;
  let exhausted = false;

  const encode = <D extends DescMessage>(
    rpc: Rpc,
    schema: D,
    json: Record<string, string>,
    init: MessageInitShape<D>,
  ): Call => {
    const ip = clientIpAt(nextIp++);
    if (cfg.protocol === "grpc") {
      const msg = toBinary(schema, create(schema, init));
      const frame = Buffer.allocUnsafe(5 + msg.length);
      frame.writeUInt8(0, 0);
      frame.writeUInt32BE(msg.length, 1);
      frame.set(msg, 5);
      return { path: `${SERVICE}/${rpc}`, body: frame, ip };
    }
    const body = Buffer.from(JSON.stringify(json));
    return { path: cfg.protocol === "rest" ? restPaths[rpc] : `${SERVICE}/${rpc}`, body, ip };
  };
  const sendCall = (): Call => {
    const phone = phoneAt(cfg.fixedBody ? cfg.phoneBase : nextPhone++);
    return encode("SendOtp", SendOtpRequestSchema, { phone }, { phone });
  };
  const verifyCall = (): Call | undefined => {
    const entry = codes[nextCode++];
    if (!entry) {
      exhausted = true;
      return undefined;
    }
    const [phone, otp] = entry;
    return encode("VerifyOtp", VerifyOtpRequestSchema, { phone, otp }, { phone, otp });
  };
  const refreshCall = (token: string): Call =>
    cfg.protocol === "rest"
      ? encode("RefreshToken", RefreshTokenRequestSchema, { refresh_token: token }, { refreshToken: token })
      : encode("RefreshToken", RefreshTokenRequestSchema, { refreshToken: token }, { refreshToken: token });

  const transport = cfg.protocol === "rest" ? await h1Transport(cfg) : await h2Transport(cfg);
  const latencies: number[] = [];
  const warmUpLatencies: number[] = [];
  let ok = 0;
  let failed = 0;
  let firstFailure: string | undefined;
  const warmUpMs = cfg.rate === undefined ? 0 : (cfg.warmUpMs ?? 0);
  const begin = performance.now();
  // `start` is where the measured part begins; the warm-up is scheduled before it.
  const start = begin + warmUpMs;
  const end = start + cfg.durationMs;

  const timed = async (call: Call, scheduled = performance.now()): Promise<Reply> => {
    const reply = await transport
      .send(call)
      .catch((err: Error): Reply => ({ ok: false, body: Buffer.alloc(0), why: err.message }));
    const latency = performance.now() - scheduled;
    if (scheduled < start) warmUpLatencies.push(latency);
    else latencies.push(latency);
    if (!reply.ok) {
      failed += 1;
      firstFailure ??= `${call.path}: ${reply.why ?? ""}`;
    } else if (scheduled >= start) ok += 1;
    return reply;
  };

  // One unit of work: a single call, or for `flow` the three calls of a login in order.
  const unit = async (scheduled?: number): Promise<boolean> => {
    if (cfg.method === "SendOtp") {
      await timed(sendCall(), scheduled);
      return true;
    }
    if (cfg.method === "VerifyOtp") {
      const call = verifyCall();
      if (!call) return false;
      await timed(call, scheduled);
      return true;
    }
    await timed(sendCall());
    const call = verifyCall();
    if (!call) return false;
    const verified = await timed(call);
    if (!verified.ok) return true;
    const parsed = JSON.parse(verified.body.toString("utf8")) as {
      refreshToken?: string;
      refresh_token?: string;
    };
    const token = parsed.refreshToken ?? parsed.refresh_token;
    if (token) await timed(refreshCall(token));
    return true;
  };

  if (cfg.rate === undefined) {
    let started = 0;
    const worker = async () => {
      while (
        performance.now() < end &&
        started++ < (cfg.count ?? Number.POSITIVE_INFINITY) &&
        (await unit())
      );
    };
    await Promise.all(Array.from({ length: cfg.concurrency }, worker));
  } else {
    // Open loop: requests start on schedule whether or not earlier ones have answered, and latency counts
    // from the scheduled start, so a stalled server cannot hide its queue (no coordinated omission).
    const interval = 1000 / cfg.rate;
    const inFlight = new Set<Promise<unknown>>();
    let next = begin;
    await new Promise<void>((resolve) => {
      const tick = () => {
        const now = performance.now();
        while (next <= now && next < end && !exhausted) {
          const p = unit(next).finally(() => inFlight.delete(p));
          inFlight.add(p);
          next += interval;
        }
        if (next >= end || exhausted) resolve();
        else setTimeout(tick, 1);
      };
      tick();
    });
    await Promise.all(inFlight);
  }
  const elapsedMs = performance.now() - start;
  transport.close();
  return {
    requests: ok + failed,
    ok,
    failed,
    ...(firstFailure !== undefined ? { firstFailure } : {}),
    elapsedMs,
    rps: ((ok + failed) * 1000) / elapsedMs,
    p50Ms: percentile(latencies, 0.5),
    p99Ms: percentile(latencies, 0.99),
    exhausted,
    ...(warmUpMs > 0 ? { warmUpP99Ms: percentile(warmUpLatencies, 0.99) } : {}),
  };
}

function percentile(values: number[], p: number): number {
  values.sort((a, b) => a - b);
  return values[Math.min(values.length - 1, Math.floor(values.length * p))] ?? 0;
}

interface Transport {
  send(call: Call): Promise<Reply>;
  close(): void;
}

async function h2Transport(cfg: GenConfig): Promise<Transport> {
  const url = new URL(cfg.url);
  const sessions = await Promise.all(
    Array.from({ length: cfg.sessions }, () => RawH2Connection.connect(url.hostname, Number(url.port))),
  );
  const grpc = cfg.protocol === "grpc";
  const blocks = new Map<string, Buffer>();
  let turn = 0;
  return {
    send(call) {
      const session = sessions[turn++ % sessions.length] as RawH2Connection;
      let block = blocks.get(call.path);
      if (!block) {
        block = RawH2Connection.headerBlock(
          url.host,
          call.path,
          grpc ? "application/grpc" : "application/json",
          grpc,
        );
        blocks.set(call.path, block);
      }
      return session.request(block, [["x-forwarded-for", call.ip]], call.body);
    },
    close() {
      for (const s of sessions) s.close();
    },
  };
}

async function h1Transport(cfg: GenConfig): Promise<Transport> {
  const url = new URL(cfg.url);
  const pool = await RawH1Pool.connect(url.hostname, Number(url.port), cfg.concurrency);
  return {
    send: (call) => pool.request(call.path, [["x-forwarded-for", call.ip]], call.body),
    close: () => pool.close(),
  };
}

if (process.argv[1] && import.meta.url.endsWith(process.argv[1].split("/").pop() ?? "")) {
  const cfg = JSON.parse(process.argv[2] ?? "{}") as GenConfig;
  const result = await run(cfg);
  process.stdout.write(`${JSON.stringify(result)}\n`);
}
