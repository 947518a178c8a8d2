import { type ChildProcess, execFileSync, spawn } from "node:child_process";
import { generateKeyPairSync, randomBytes } from "node:crypto";
import { mkdirSync, mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { createServer } from "node:net";
import { cpus, loadavg, tmpdir } from "node:os";
import { join } from "node:path";
import { Redis } from "ioredis";
import { imageRuntime } from "./image-runtime.js";
import type { GenConfig, GenResult } from "./load/h2gen.js";
import { phoneAt } from "./load/phones.js";

/**
 * `npm run bench`: the service (compiled JS, bench SMS sink) beside its ceilings (connect-node and grpc-js
 * with no-op handlers, node:http with one Redis round trip) and an express equivalent of SendOtp, each loaded
 * from another core, with ratios to the ceiling of the same protocol.
 * `BENCH_QUICK=1`: one short round of everything, as a smoke check. `BENCH_ONLY=a,b`: only the scenarios
 * whose names contain one of the substrings. `BENCH_SOAK=1` (or `BENCH_SOAK_MS`): after the rounds, the soak
 * (see soak below); `BENCH_ONLY=soak` names no scenario, so only the soak runs. See README "Performance".
 */
const QUICK = process.env.BENCH_QUICK === "1";
const ONLY = (process.env.BENCH_ONLY ?? "")
  .split(",")
  .map((x) => x.trim())
  .filter((x) => x !== "");
const SOAK_MS =
  process.env.BENCH_SOAK_MS !== undefined
    ? Number(process.env.BENCH_SOAK_MS)
    : process.env.BENCH_SOAK === "1"
      ? 600_000
      : 0;
const SOAK_SAMPLE_MS = 10_000;
const ROUNDS = Number(process.env.BENCH_ROUNDS ?? (QUICK ? 1 : 3));
const DURATION_MS = Number(process.env.BENCH_DURATION_MS ?? (QUICK ? 1000 : 5000));
const CONCURRENCY = 64;
/**
 * Latency at half of peak is read after this much of the same schedule on the same connections. Without it
 * the p99 of a 3 s run was the first ~300 ms: the generator is a fresh process, and its own cold start put
 * 200 of ~2700 gRPC SendOtps above 20 ms (up to 93 ms), none after the first second. Reported apart.
 */
const HALF_WARM_UP_MS = QUICK ? 500 : 1000;
const SESSIONS = 4;
const SERVER_CORE = process.env.BENCH_SERVER_CORE ?? "0";
const LOAD_CORE = process.env.BENCH_LOAD_CORE ?? "1";
// Redis shares the load generators' core unless told otherwise (to see what that sharing costs the latency).
const REDIS_CORE = process.env.BENCH_REDIS_CORE ?? LOAD_CORE;
const ROOT = new URL("..", import.meta.url).pathname;
const RESULTS = join(ROOT, "bench/results");
const work = mkdtempSync(join(tmpdir(), "otp-bench-"));

type Protocol = "rest" | "connect" | "grpc";
type Target =
  | "service"
  | "connect-noop"
  | "grpcjs-noop"
  | "grpcjs-verify-floor"
  | "http-send-floor"
  | "express-equivalent"
  | "http-redis";
/** Servers that talk to Redis: their round trips are counted in a traced run of their own. */
const USES_REDIS: ReadonlySet<Target> = new Set([
  "service",
  "grpcjs-verify-floor",
  "http-send-floor",
  "express-equivalent",
  "http-redis",
]);
/**
 * The Redis users whose requests the round-trip tracer can follow: it hooks node:http and node:http2 servers,
 * and grpc-js keeps its HTTP/2 server to itself. The floor's 3 commands in 2 round trips are its code's
 * (verify-floor.ts); its Redis calls per request are still counted from Redis's side.
 */
const TRACEABLE: ReadonlySet<Target> = new Set([...USES_REDIS].filter((t) => t !== "grpcjs-verify-floor"));

interface Sample {
  rps: number;
  p50Ms: number;
  p99Ms: number;
  cpuMicrosPerReq: number;
  peakRssMb: number;
  redisCallsPerReq: number;
  sentPerReq: number;
  roundTripsMean: number;
  roundTripsMax: number;
  requests: number;
  failed: number;
}

interface Scenario {
  readonly name: string;
  readonly protocol: Protocol;
  readonly target: Target;
  /** `reference`: what the service is compared with that is not a ceiling (the express equivalent). */
  readonly kind: "ceiling" | "reference" | "SendOtp" | "VerifyOtp" | "flow";
  readonly tool: "wrk" | "ours";
}

const EXPRESS = "express equivalent SendOtp /api/v1";
const HTTP_REDIS = "ceiling /api/v1 + 1 Redis (node:http)";
/** What the gRPC VerifyOtp target is measured against besides the ceilings: see bench/server/verify-floor.ts. */
const VERIFY_FLOOR = "VerifyOtp floor gRPC (grpc-js: JWT, 3 Redis commands, nothing else)";
/** The same for `/api/v1` SendOtp against `node:http` + 1 Redis: see bench/server/send-floor.ts. */
const SEND_FLOOR = "SendOtp floor /api/v1 (node:http: 6 limits and the code in 1 script, nothing else)";
const allScenarios: Scenario[] = [
  {
    name: "ceiling /api/v1 (connect-node fallback, no-op)",
    protocol: "rest",
    target: "connect-noop",
    kind: "ceiling",
    tool: "wrk",
  },
  { name: HTTP_REDIS, protocol: "rest", target: "http-redis", kind: "ceiling", tool: "wrk" },
  { name: EXPRESS, protocol: "rest", target: "express-equivalent", kind: "reference", tool: "wrk" },
  { name: SEND_FLOOR, protocol: "rest", target: "http-send-floor", kind: "reference", tool: "wrk" },
  {
    name: "ceiling Connect JSON (connect-node, no-op)",
    protocol: "connect",
    target: "connect-noop",
    kind: "ceiling",
    tool: "ours",
  },
  {
    name: "ceiling gRPC (connect-node, no-op)",
    protocol: "grpc",
    target: "connect-noop",
    kind: "ceiling",
    tool: "ours",
  },
  {
    name: "ceiling gRPC (grpc-js, no-op)",
    protocol: "grpc",
    target: "grpcjs-noop",
    kind: "ceiling",
    tool: "ours",
  },
  { name: VERIFY_FLOOR, protocol: "grpc", target: "grpcjs-verify-floor", kind: "reference", tool: "ours" },
  { name: "SendOtp /api/v1", protocol: "rest", target: "service", kind: "SendOtp", tool: "wrk" },
  { name: "VerifyOtp /api/v1", protocol: "rest", target: "service", kind: "VerifyOtp", tool: "ours" },
  { name: "SendOtp Connect JSON", protocol: "connect", target: "service", kind: "SendOtp", tool: "ours" },
  { name: "VerifyOtp Connect JSON", protocol: "connect", target: "service", kind: "VerifyOtp", tool: "ours" },
  { name: "SendOtp gRPC", protocol: "grpc", target: "service", kind: "SendOtp", tool: "ours" },
  { name: "VerifyOtp gRPC", protocol: "grpc", target: "service", kind: "VerifyOtp", tool: "ours" },
  {
    name: "login flow Connect JSON (send, verify, refresh)",
    protocol: "connect",
    target: "service",
    kind: "flow",
    tool: "ours",
  },
];
const scenarios =
  ONLY.length === 0 ? allScenarios : allScenarios.filter((s) => ONLY.some((o) => s.name.includes(o)));

/**
 * The order of one round's runs: protocol by protocol, the ceilings and the reference, then the service's
 * scenarios, then the ceilings and the reference again. A ratio's two sides are then measured within a
 * minute or so of each other, and the mean of a ceiling's two runs stands for the ceiling at the service's
 * time when the machine's speed drifts steadily. Until 2026-12-03 every ceiling ran first and the service rows
 * minutes later; on a machine whose speed moved, one run's rounds read 0.40 / 0.30 / 0.54 for one ratio.
 */
function roundOrder(list: readonly Scenario[]): Scenario[] {
  const order: Scenario[] = [];
  for (const protocol of ["rest", "connect", "grpc"] as const) {
    const mine = list.filter((s) => s.protocol === protocol);
    const around = mine.filter((s) => s.target !== "service");
    const service = mine.filter((s) => s.target === "service");
    order.push(...around, ...service, ...(service.length > 0 ? around : []));
  }
  return order;
}

// ---------------------------------------------------------------------------------------------- processes

function requireTools(): void {
  const missing: string[] = [];
  for (const [tool, pkg] of [
    ["redis-server", "redis-server"],
    ["h2load", "nghttp2-client"],
    ["wrk", "wrk"],
    ["taskset", "util-linux"],
  ] as const) {
    try {
      execFileSync("sh", ["-c", `command -v ${tool}`], { stdio: "ignore" });
    } catch {
      missing.push(pkg);
    }
  }
  if (missing.length > 0) {
    process.stderr.write(
      `bench: missing tools; install them with: apt-get install -y ${missing.join(" ")}\n`,
    );
    process.exit(2);
  }
  if (cpus().length < 2) {
    process.stderr.write("bench: needs at least 2 cores (server and load generator on different cores)\n");
    process.exit(2);
  }
}

async function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const srv = createServer();
    srv.on("error", reject);
    srv.listen(0, "127.0.0.1", () => {
      const addr = srv.address();
      srv.close(() => (typeof addr === "object" && addr ? resolve(addr.port) : reject(new Error("no port"))));
    });
  });
}

const children: ChildProcess[] = [];
function cleanup(): void {
  for (const c of children) if (c.exitCode === null) c.kill("SIGKILL");
  rmSync(work, { recursive: true, force: true });
}
process.on("exit", cleanup);
process.on("SIGINT", () => process.exit(130));
process.on("SIGTERM", () => process.exit(143));

async function startRedis(): Promise<{ url: string; client: Redis }> {
  const port = await freePort();
  const child = spawn(
    "taskset",
    [
      "-c",
      REDIS_CORE,
      "redis-server",
      "--port",
      String(port),
      "--bind",
      "127.0.0.1",
      "--save",
      "",
      "--appendonly",
      "no",
      "--dir",
      work,
    ],
    { stdio: ["ignore", "pipe", "inherit"] },
  );
  children.push(child);
  await new Promise<void>((resolve, reject) => {
    let out = "";
    child.stdout?.on("data", (d: Buffer) => {
      out += d.toString();
      if (out.includes("Ready to accept connections")) resolve();
    });
    child.once("exit", (code) => reject(new Error(`redis-server exited (${code}): ${out.slice(-300)}`)));
  });
  const url = `redis://127.0.0.1:${port}`;
  return { url, client: new Redis(url) };
}

interface BenchServer {
  readonly port: number;
  readonly proc: ChildProcess;
  ask<T>(op: Record<string, unknown>): Promise<T>;
  /** Closes the IPC channel, which makes the server close and exit; waits for it (at most 10 s). */
  stop(): Promise<void>;
}

/**
 * The Node flags production runs with (the image's NODE_OPTIONS and its CMD's options, read from the Dockerfile so
 * the two cannot drift), given to every bench server: memory and GC are measured as deployed. BENCH_NODE_FLAGS
 * replaces them.
 */
const IMAGE = imageRuntime(join(ROOT, "Dockerfile"));
const PRODUCTION_NODE_FLAGS = (
  process.env.BENCH_NODE_FLAGS !== undefined
    ? process.env.BENCH_NODE_FLAGS.split(/\s+/)
    : [...IMAGE.nodeOptions.split(/\s+/), ...IMAGE.cmdFlags]
).filter((f) => f !== "");
/** The image's other settings for the process (MALLOC_ARENA_MAX); one set in the bench's environment wins. */
const PRODUCTION_ENV: Record<string, string> = Object.fromEntries(
  Object.entries(IMAGE.env).map(([name, value]) => [name, process.env[name] ?? value]),
);

async function startServer(target: Target, env: Record<string, string>): Promise<BenchServer> {
  const port = await freePort();
  const proc = spawn(
    "taskset",
    [
      "-c",
      SERVER_CORE,
      process.execPath,
      ...PRODUCTION_NODE_FLAGS,
      join(ROOT, "dist/bench/server/main.js"),
      target,
    ],
    {
      stdio: ["ignore", "ignore", "inherit", "ipc"],
      env: { ...process.env, ...PRODUCTION_ENV, ...env, BENCH_PORT: String(port) },
    },
  );
  children.push(proc);
  let nextId = 1;
  const pending = new Map<number, (v: unknown) => void>();
  const ready = new Promise<void>((resolve, reject) => {
    proc.once("exit", (code) => reject(new Error(`bench server ${target} exited (${code})`)));
    proc.on("message", (m: { id?: number; ready?: boolean }) => {
      if (m.ready) resolve();
      else if (m.id !== undefined) {
        pending.get(m.id)?.(m);
        pending.delete(m.id);
      }
    });
  });
  await ready;
  return {
    port,
    proc,
    ask<T>(op: Record<string, unknown>) {
      const id = nextId++;
      return new Promise<T>((resolve) => {
        pending.set(id, resolve as (v: unknown) => void);
        proc.send({ ...op, id });
      });
    },
    stop() {
      return new Promise<void>((resolve) => {
        if (proc.exitCode !== null || !proc.connected) return resolve();
        const timer = setTimeout(resolve, 10_000);
        proc.once("exit", () => {
          clearTimeout(timer);
          resolve();
        });
        proc.disconnect();
      });
    },
  };
}

function run(cmd: string, args: string[]): Promise<string> {
  return new Promise((resolve, reject) => {
    const child = spawn("taskset", ["-c", LOAD_CORE, cmd, ...args], { stdio: ["ignore", "pipe", "pipe"] });
    children.push(child);
    let out = "";
    let err = "";
    child.stdout.on("data", (d: Buffer) => {
      out += d.toString();
    });
    child.stderr.on("data", (d: Buffer) => {
      err += d.toString();
    });
    child.once("exit", (code) =>
      code === 0
        ? resolve(out)
        : reject(new Error(`${cmd} exited ${code}: ${err.slice(-500)}${out.slice(-500)}`)),
    );
  });
}

// ---------------------------------------------------------------------------------------------- load tools

interface LoadResult {
  requests: number;
  failed: number;
  rps: number;
  p50Ms: number;
  p99Ms: number;
  firstFailure?: string;
}

async function ours(cfg: GenConfig): Promise<GenResult> {
  const out = await run(process.execPath, [join(ROOT, "dist/bench/load/h2gen.js"), JSON.stringify(cfg)]);
  return JSON.parse(out.trim().split("\n").pop() ?? "{}") as GenResult;
}

function wrkMs(text: string): number {
  const m = /^([\d.]+)(us|ms|s)$/.exec(text);
  if (!m) return Number.NaN;
  const v = Number(m[1]);
  return m[2] === "us" ? v / 1000 : m[2] === "s" ? v * 1000 : v;
}

async function wrk(port: number, script: string, arg: string, durationMs: number): Promise<LoadResult> {
  const out = await run("wrk", [
    "-t1",
    `-c${CONCURRENCY}`,
    `-d${Math.max(1, Math.round(durationMs / 1000))}s`,
    "--latency",
    "-s",
    join(ROOT, "bench/load", script),
    `http://127.0.0.1:${port}`,
    "--",
    arg,
  ]);
  const requests = Number(/(\d+) requests in/.exec(out)?.[1] ?? "0");
  const non2xx = Number(/Non-2xx or 3xx responses: (\d+)/.exec(out)?.[1] ?? "0");
  const socketErrors = /Socket errors: connect (\d+), read (\d+), write (\d+), timeout (\d+)/.exec(out);
  const errors = socketErrors ? socketErrors.slice(1).reduce((a, b) => a + Number(b), 0) : 0;
  return {
    requests,
    failed: non2xx + errors,
    rps: Number(/Requests\/sec:\s+([\d.]+)/.exec(out)?.[1] ?? "0"),
    p50Ms: wrkMs(/ 50%\s+(\S+)/.exec(out)?.[1] ?? ""),
    p99Ms: wrkMs(/ 99%\s+(\S+)/.exec(out)?.[1] ?? ""),
    ...(non2xx + errors > 0 ? { firstFailure: `wrk: ${non2xx} non-2xx, ${errors} socket errors` } : {}),
  };
}

async function h2load(port: number, protocol: "connect" | "grpc", durationMs: number): Promise<LoadResult> {
  const file = join(work, `h2load-${protocol}.bin`);
  const phone = "+919800000001";
  if (protocol === "connect") writeFileSync(file, JSON.stringify({ phone }));
  else {
    // SendOtpRequest{phone} by hand: field 1, wire type 2 (0x0a), length, bytes; behind the 5-byte gRPC prefix.
    const msg = Buffer.concat([Buffer.from([0x0a, phone.length]), Buffer.from(phone)]);
    const prefix = Buffer.alloc(5);
    prefix.writeUInt32BE(msg.length, 1);
    writeFileSync(file, Buffer.concat([prefix, msg]));
  }
  const headers =
    protocol === "grpc"
      ? ["-H", "content-type: application/grpc", "-H", "te: trailers"]
      : ["-H", "content-type: application/json"];
  const out = await run("h2load", [
    "-c",
    String(SESSIONS),
    "-m",
    String(CONCURRENCY / SESSIONS),
    "-D",
    String(Math.max(1, Math.round(durationMs / 1000))),
    "-d",
    file,
    ...headers,
    `http://127.0.0.1:${port}/auth.v1.AuthService/SendOtp`,
  ]);
  const m = /requests: (\d+) total, \d+ started, \d+ done, (\d+) succeeded, (\d+) failed, (\d+) errored/.exec(
    out,
  );
  const status2xx = Number(/status codes: (\d+) 2xx/.exec(out)?.[1] ?? "0");
  const requests = Number(m?.[1] ?? "0");
  return {
    requests,
    failed: Number(m?.[3] ?? "0") + Number(m?.[4] ?? "0") + (Number(m?.[2] ?? "0") - status2xx),
    rps: Number(/finished in [\d.]+\w*, ([\d.]+) req\/s/.exec(out)?.[1] ?? "0"),
    p50Ms: Number.NaN,
    p99Ms: Number.NaN,
  };
}

// ---------------------------------------------------------------------------------------------- measuring

interface ServerStats {
  cpuMicros: number;
  peakRss: number;
  /** Only from a server started with BENCH_TRACE=1. */
  rt: { requests: number; sumDepth: number; maxDepth: number; sumCommands: number; untraced: number } | null;
  /** Garbage-collection pauses since the last `stats`. */
  gc: { count: number; totalMs: number; maxMs: number };
}

async function redisCalls(redis: Redis): Promise<number> {
  const info = await redis.info("commandstats");
  let total = 0;
  for (const m of info.matchAll(/^cmdstat_(\w+(?:\|\w+)?):calls=(\d+)/gm)) {
    // The bench's own INFO and CONFIG RESETSTAT are not the service's.
    if (m[1] === "info" || m[1]?.startsWith("config")) continue;
    total += Number(m[2]);
  }
  return total;
}

/**
 * BENCH_CPU_PROF=1: a V8 CPU profile of the server over each measured run, nothing before or after it.
 * BENCH_ALLOC_PROF=1: a sampling allocation profile instead (collected objects included).
 */
const PROFILE_KIND =
  process.env.BENCH_ALLOC_PROF === "1" ? "alloc" : process.env.BENCH_CPU_PROF === "1" ? "cpu" : undefined;
const PROFILES = PROFILE_KIND ? join(RESULTS, "profiles") : undefined;

async function measure(
  server: BenchServer,
  redis: Redis,
  load: () => Promise<LoadResult>,
  /** Names the run's profile; a run without one (the traced runs: the tracer's own CPU) is not profiled. */
  profileAs?: string,
): Promise<Sample> {
  const profiled = PROFILES !== undefined && profileAs !== undefined;
  // Requests a finished load tool left in flight must not be billed to this run.
  await new Promise((r) => setTimeout(r, 300));
  await server.ask<ServerStats>({ op: "stats" });
  await redis.config("RESETSTAT");
  if (profiled) await profileOp(server);
  const before = await server.ask<ServerStats>({ op: "stats" });
  const result = await load();
  const after = await server.ask<ServerStats>({ op: "stats" });
  if (profiled) {
    mkdirSync(PROFILES, { recursive: true });
    const ext = PROFILE_KIND === "alloc" ? "heapprofile" : "cpuprofile";
    const file = join(PROFILES, `${profileAs.replace(/[^\w.-]+/g, "_")}-${Date.now()}.${ext}`);
    await profileOp(server, file);
    process.stdout.write(`profile: ${file} (${result.requests} requests)\n`);
  }
  const calls = await redisCalls(redis);
  if (result.failed > 0) {
    throw new Error(`${result.failed} of ${result.requests} requests failed: ${result.firstFailure ?? "?"}`);
  }
  const n = Math.max(1, result.requests);
  const rt = after.rt;
  const rtReqs = Math.max(1, rt?.requests ?? 0);
  return {
    rps: result.rps,
    p50Ms: result.p50Ms,
    p99Ms: result.p99Ms,
    cpuMicrosPerReq: (after.cpuMicros - before.cpuMicros) / n,
    peakRssMb: after.peakRss / 2 ** 20,
    redisCallsPerReq: calls / n,
    sentPerReq: rt ? rt.sumCommands / rtReqs : Number.NaN,
    roundTripsMean: rt ? rt.sumDepth / rtReqs : Number.NaN,
    roundTripsMax: rt ? rt.maxDepth : Number.NaN,
    requests: result.requests,
    failed: result.failed,
  };
}

/** Starts the server's profile (BENCH_CPU_PROF or BENCH_ALLOC_PROF), or with a file stops it and writes it there. */
async function profileOp(server: BenchServer, file?: string): Promise<void> {
  const r = await server.ask<{ error?: string }>({
    op: "profile",
    kind: PROFILE_KIND,
    ...(file ? { file } : {}),
  });
  if (r.error) throw new Error(`bench server profile: ${r.error}`);
}

/** Writes a result as JSON, formatted by Biome so that a result can be committed and `biome check` stays clean. */
function writeResult(file: string, value: unknown): void {
  writeFileSync(file, `${JSON.stringify(value, null, 2)}\n`);
  try {
    execFileSync(join(ROOT, "node_modules/.bin/biome"), ["format", "--write", file], { stdio: "ignore" });
  } catch {
    process.stderr.write(`bench: could not format ${file} with biome (the JSON is fine)\n`);
  }
}

/** What a result was measured on, written into every result file. */
function machineInfo() {
  return {
    nproc: cpus().length,
    cpu:
      execFileSync("sh", ["-c", "lscpu | sed -n 's/^Model name: *//p' | head -1"]).toString().trim() ||
      cpus()[0]?.model,
    node: process.version,
    nodeFlags: PRODUCTION_NODE_FLAGS,
    env: PRODUCTION_ENV,
    cores: { server: SERVER_CORE, load: LOAD_CORE, redis: REDIS_CORE },
    redis: execFileSync("redis-server", ["--version"]).toString().trim(),
    h2load: execFileSync("h2load", ["--version"]).toString().trim(),
    loadAverage: loadavg(),
  };
}

// ---------------------------------------------------------------------------------------------- soak

interface SoakDeps {
  readonly svc: BenchServer;
  readonly redis: Redis;
  gen(
    srv: BenchServer,
    protocol: Protocol,
    method: GenConfig["method"],
    extra?: Partial<GenConfig>,
  ): GenConfig;
  prepare(svc: BenchServer, n: number, label: string): Promise<string>;
  writeCodes(codes: Iterable<[string, string]>, label: string): string;
  /** SendOtp req/s per protocol from the rounds, when they ran. */
  readonly sendRps: ReadonlyMap<Protocol, number>;
}

interface SoakSample {
  tMs: number;
  rssMb: number;
  heapUsedMb: number;
  heapTotalMb: number;
  /** The lowest heap used in the interval: what GC left, so a sawtooth does not read as growth. */
  heapFloorMb: number;
  peakRssMb: number;
  eld: { p50Ms: number; p99Ms: number; maxMs: number };
}

// Keys allowed to live without a TTL: users (`user:{<phone>}`, `user:id:<id>`, the `user:seq` counter).
const NO_TTL_ALLOWED = /^user:/;

/** A key's shape: hash tags, long tokens and numbers folded, so a pattern counts every key of its kind. */
function keyPattern(key: string): string {
  return key
    .replace(/\{[^}]*\}/g, "{…}")
    .replace(/[A-Za-z0-9_-]{16,}/g, "<token>")
    .replace(/\d+/g, "#");
}

/**
 * The soak: after the peak is known, the login flow over /api/v1 (SendOtp, VerifyOtp, RefreshToken) open loop
 * at half the flow's peak rate for BENCH_SOAK_MS, in chunks of 10 s: each chunk's sends are recorded by the
 * sink and verified in the next chunk, so codes are always fresh and nothing is prepared ahead beyond the first
 * chunk. Every 10 s the server reports RSS, heap and event-loop delay (p50/p99/max since the last sample). At
 * the end every key of the bench's Redis is scanned: only users may live without a TTL. Writes
 * bench/results/soak-<time>.json. Resolves false when a request failed or a key leaked.
 */
async function soak(d: SoakDeps): Promise<boolean> {
  const { svc, redis } = d;
  const started = Date.now();
  // Peak: the flow closed loop, for as long as a round (or until its codes run out).
  const sendGuess = d.sendRps.get("rest") ?? d.sendRps.get("connect") ?? 2000;
  const peakCodes = Math.ceil((Math.max(300, sendGuess) * DURATION_MS) / 1000 / 2) + 100;
  const peakRun = await ours(
    d.gen(svc, "rest", "flow", { codesFile: await d.prepare(svc, peakCodes, "soak-peak") }),
  );
  if (peakRun.failed > 0)
    throw new Error(`soak peak: ${peakRun.failed} failed ${peakRun.firstFailure ?? ""}`);
  // A flow is three requests; its rate is logins per second.
  const peakFlows = peakRun.rps / 3;
  const rate = Math.max(10, Math.round(peakFlows / 2));
  process.stdout.write(
    `\nsoak: login flow /api/v1 peak ${peakFlows.toFixed(0)} flows/s (${peakRun.rps.toFixed(0)} req/s); ${rate} flows/s open loop for ${(SOAK_MS / 1000).toFixed(0)} s, a sample every ${SOAK_SAMPLE_MS / 1000} s\n`,
  );

  let codesFile = await d.prepare(svc, Math.ceil((rate * SOAK_SAMPLE_MS) / 1000) + 50, "soak-0");
  await svc.ask({ op: "record", on: true });
  await svc.ask({ op: "sample" }); // starts the event-loop delay monitor
  const samples: SoakSample[] = [];
  const chunks: {
    tMs: number;
    requests: number;
    failed: number;
    rps: number;
    p50Ms: number;
    p99Ms: number;
  }[] = [];
  let firstFailure: string | undefined;
  const t0 = Date.now();
  const takeSample = async () => {
    const m = await svc.ask<{
      rss: number;
      heapUsed: number;
      heapTotal: number;
      heapFloor: number;
      peakRss: number;
      eld: SoakSample["eld"];
    }>({ op: "sample" });
    const mb = (b: number) => b / 2 ** 20;
    const s: SoakSample = {
      tMs: Date.now() - t0,
      rssMb: mb(m.rss),
      heapUsedMb: mb(m.heapUsed),
      heapTotalMb: mb(m.heapTotal),
      heapFloorMb: mb(m.heapFloor),
      peakRssMb: mb(m.peakRss),
      eld: m.eld,
    };
    samples.push(s);
    process.stdout.write(
      `soak ${(s.tMs / 1000).toFixed(0).padStart(4)} s: RSS ${s.rssMb.toFixed(0)} MB (peak ${s.peakRssMb.toFixed(0)}), heap ${s.heapUsedMb.toFixed(0)}/${s.heapTotalMb.toFixed(0)} MB (floor ${s.heapFloorMb.toFixed(0)}), event-loop delay p50 ${s.eld.p50Ms.toFixed(1)} p99 ${s.eld.p99Ms.toFixed(1)} max ${s.eld.maxMs.toFixed(1)} ms\n`,
    );
  };
  let sampling = Promise.resolve();
  const sampler = setInterval(() => {
    sampling = sampling.then(takeSample);
  }, SOAK_SAMPLE_MS);
  let chunk = 0;
  while (Date.now() - t0 < SOAK_MS - 500) {
    chunk += 1;
    const durationMs = Math.min(SOAK_SAMPLE_MS, SOAK_MS - (Date.now() - t0));
    const r = await ours(d.gen(svc, "rest", "flow", { rate, durationMs, codesFile }));
    chunks.push({
      tMs: Date.now() - t0,
      requests: r.requests,
      failed: r.failed,
      rps: r.rps,
      p50Ms: r.p50Ms,
      p99Ms: r.p99Ms,
    });
    if (r.failed > 0) firstFailure ??= r.firstFailure;
    // This chunk's sends are the next chunk's verifies.
    const { codes } = await svc.ask<{ codes: [string, string][] }>({ op: "codes" });
    codesFile = d.writeCodes(new Map(codes), `soak-${chunk}`);
  }
  clearInterval(sampler);
  await sampling;
  if (samples.length === 0 || (samples.at(-1)?.tMs ?? 0) < Date.now() - t0 - SOAK_SAMPLE_MS / 2) {
    await takeSample();
  }
  await svc.ask({ op: "record", on: false });
  await svc.ask({ op: "codes" });
  const requests = chunks.reduce((a, c) => a + c.requests, 0);
  const failed = chunks.reduce((a, c) => a + c.failed, 0);

  // Every key without a TTL, by pattern; users may, nothing else may.
  const patterns = new Map<string, { keys: number; noTtl: number; example: string }>();
  let cursor = "0";
  do {
    const [next, keys] = await redis.scan(cursor, "COUNT", 1000);
    cursor = next;
    const pipe = redis.pipeline();
    for (const k of keys) pipe.ttl(k);
    const ttls = (await pipe.exec()) ?? [];
    keys.forEach((k, i) => {
      const ttl = ttls[i]?.[1];
      if (ttl === -2) return; // expired since the scan saw it
      const p = keyPattern(k);
      const entry = patterns.get(p) ?? { keys: 0, noTtl: 0, example: k };
      entry.keys += 1;
      if (ttl === -1) entry.noTtl += 1;
      patterns.set(p, entry);
    });
  } while (cursor !== "0");
  const keyReport = [...patterns]
    .map(([pattern, v]) => ({ pattern, ...v, allowed: NO_TTL_ALLOWED.test(v.example) }))
    .sort((a, b) => b.keys - a.keys);
  const leaks = keyReport.filter((k) => k.noTtl > 0 && !k.allowed);
  // What a leaking key is, and how big: a stream may be capped by length (XADD MAXLEN) rather than by time.
  const leakInfo = await Promise.all(
    leaks.map(async (k) => {
      const type = await redis.type(k.example);
      const size =
        type === "stream"
          ? `${await redis.xlen(k.example)} entries`
          : type === "hash"
            ? `${await redis.hlen(k.example)} fields`
            : type === "string"
              ? `${await redis.strlen(k.example)} bytes`
              : "";
      return `${k.pattern} (${type}${size ? `, ${size}` : ""}, e.g. ${k.example})`;
    }),
  );

  // Flat: the last third's medians against the first third's, with a little slack for noise.
  const third = Math.max(1, Math.floor(samples.length / 3));
  const first = samples.slice(0, third);
  const last = samples.slice(-third);
  const metrics = [
    { name: "RSS MB", of: (s: SoakSample) => s.rssMb, slack: 10 },
    { name: "heap floor MB", of: (s: SoakSample) => s.heapFloorMb, slack: 10 },
    { name: "event-loop delay p99 ms", of: (s: SoakSample) => s.eld.p99Ms, slack: 5 },
  ].map((m) => {
    const a = median(first.map(m.of));
    const b = median(last.map(m.of));
    return { metric: m.name, firstThird: a, lastThird: b, flat: b <= a * 1.1 + m.slack };
  });
  const flat = metrics.every((m) => m.flat);

  const f = (x: number, dd = 1) => x.toFixed(dd);
  process.stdout.write(
    [
      "",
      `soak: ${requests} requests in ${chunks.length} chunks, ${failed} failed${firstFailure ? ` (first: ${firstFailure})` : ""}`,
      ...metrics.map(
        (m) =>
          `soak ${m.metric}: first third ${f(m.firstThird)}, last third ${f(m.lastThird)}: ${m.flat ? "flat" : "GROWING"}`,
      ),
      `soak verdict: ${flat ? "flat" : "NOT flat"} (last third ≤ first third × 1.1 + 10 MB / 5 ms)`,
      "soak keys (pattern: keys, without TTL):",
      ...keyReport.map(
        (k) =>
          `  ${k.pattern}: ${k.keys}, ${k.noTtl}${k.noTtl > 0 ? (k.allowed ? " (users: allowed)" : " LEAK") : ""}`,
      ),
      leaks.length === 0
        ? "soak TTLs: every key without a TTL is a user's"
        : `soak TTLs: FAIL, ${leaks.length} pattern(s) without TTL: ${leakInfo.join(", ")}`,
      "",
    ].join("\n"),
  );
  mkdirSync(RESULTS, { recursive: true });
  const stamp = new Date().toISOString().replace(/[:.]/g, "-");
  const file = join(RESULTS, `soak-${stamp}.json`);
  writeResult(file, {
    when: new Date().toISOString(),
    soakMs: SOAK_MS,
    sampleMs: SOAK_SAMPLE_MS,
    machine: machineInfo(),
    peak: { flowsPerSecond: peakFlows, requestsPerSecond: peakRun.rps },
    rateFlowsPerSecond: rate,
    requests,
    failed,
    firstFailure,
    flat,
    metrics,
    samples,
    chunks,
    keys: keyReport,
    leaks: leakInfo,
    tookMs: Date.now() - started,
  });
  process.stdout.write(`soak: written to ${file}\n`);
  return failed === 0 && leaks.length === 0;
}

// ---------------------------------------------------------------------------------------------- main

const median = (xs: number[]) => {
  const s = xs.filter((x) => !Number.isNaN(x)).sort((a, b) => a - b);
  if (s.length === 0) return Number.NaN;
  const mid = Math.floor(s.length / 2);
  return s.length % 2 ? (s[mid] as number) : ((s[mid - 1] as number) + (s[mid] as number)) / 2;
};

async function main(): Promise<void> {
  requireTools();
  if (scenarios.length === 0 && SOAK_MS === 0) {
    process.stderr.write(`bench: BENCH_ONLY=${ONLY.join(",")} names no scenario\n`);
    process.exit(2);
  }
  const started = Date.now();
  const { url: redisUrl, client: redis } = await startRedis();
  const jwtKey = generateKeyPairSync("ed25519")
    .privateKey.export({ type: "pkcs8", format: "pem" })
    .toString();
  // A production-like configuration; NODE_ENV is not `production` only because the SMS provider is the bench
  // sink injected by the bench entrypoint rather than one `SMS_PROVIDER` names. Anything set in the caller's
  // environment (limits raised, a trusted proxy header) is passed through and wins.
  const serviceEnv: Record<string, string> = {
    NODE_ENV: "bench",
    LOG_LEVEL: "info",
    REDIS_URL: redisUrl,
    OTP_SECRET: randomBytes(32).toString("base64"),
    JWT_PRIVATE_KEY: jwtKey,
    // Every request comes from 127.0.0.1 with its own X-Forwarded-For, so the per-IP limits see many clients,
    // as behind a real load balancer. The SMS-pumping caps are raised, not turned off, so their counters are
    // still consumed on every send: a bench is one sustained burst that the hourly caps exist to stop.
    TRUSTED_PROXIES: "127.0.0.1",
    SMS_MAX_PER_PREFIX_PER_HOUR: "1000000000",
    SMS_MAX_PER_COUNTRY_PER_HOUR: "1000000000",
    SMS_MAX_PER_HOUR: "1000000000",
  };
  for (const [k, v] of Object.entries(process.env)) if (k in serviceEnv && v !== undefined) serviceEnv[k] = v;
  serviceEnv.REDIS_URL = redisUrl;
  // The express equivalent reads the same limits and code settings from the same environment.
  const envOf = (t: Target): Record<string, string> =>
    t === "service" || t === "express-equivalent" || t === "http-send-floor"
      ? serviceEnv
      : t === "http-redis" || t === "grpcjs-verify-floor"
        ? { REDIS_URL: redisUrl }
        : {};

  // The generator is checked beside wrk/h2load on the no-op server for every protocol it loads.
  const genProtocols = [...new Set(scenarios.filter((s) => s.tool === "ours").map((s) => s.protocol))];
  const targets = new Set<Target>(scenarios.map((s) => s.target));
  if (genProtocols.length > 0) targets.add("connect-noop");
  if (SOAK_MS > 0) targets.add("service");
  const servers: Partial<Record<Target, BenchServer>> = {};
  for (const t of targets) servers[t] = await startServer(t, envOf(t));
  const server = (t: Target): BenchServer => {
    const s = servers[t];
    if (!s) throw new Error(`bench server ${t} was not started`);
    return s;
  };
  let phoneCursor = 0;
  const phones = (n: number) => {
    const first = phoneCursor;
    phoneCursor += n + 1;
    return first;
  };
  const gen = (
    srv: BenchServer,
    protocol: Protocol,
    method: GenConfig["method"],
    extra: Partial<GenConfig> = {},
  ): GenConfig => ({
    url: `http://127.0.0.1:${srv.port}`,
    protocol,
    method,
    durationMs: DURATION_MS,
    concurrency: CONCURRENCY,
    sessions: SESSIONS,
    phoneBase: phones(1_000_000),
    ...extra,
  });

  /** Codes for `n` verifies: sent through a service process, read back from its sink over IPC. */
  const prepare = async (svc: BenchServer, n: number, label: string): Promise<string> => {
    await svc.ask({ op: "record", on: true });
    const res = await ours(gen(svc, "connect", "SendOtp", { count: n, durationMs: 120_000 }));
    await svc.ask({ op: "record", on: false });
    const { codes } = await svc.ask<{ codes: [string, string][] }>({ op: "codes" });
    // A load run that just ended can leave sends in flight that land while recording: keep the last code per
    // phone (the only live one), which may be a few more than asked for.
    const live = new Map(codes);
    if (res.failed > 0 || live.size < n) {
      throw new Error(
        `preparing ${n} codes: ${live.size} recorded, ${res.failed} failed ${res.firstFailure ?? ""}`,
      );
    }
    return writeCodes(live, label);
  };
  /** `n` fresh phones with a made-up code, for the VerifyOtp floor (which implements no SendOtp). */
  const floorCodes = (n: number, label: string): string => {
    const first = phones(n);
    return writeCodes(
      Array.from({ length: n }, (_, i): [string, string] => [phoneAt(first + i), "000000"]),
      label,
    );
  };
  const writeCodes = (codes: Iterable<[string, string]>, label: string): string => {
    const file = join(work, `codes-${label}.txt`);
    writeFileSync(file, `${[...codes].map(([p, c]) => `${p} ${c}`).join("\n")}\n`);
    return file;
  };

  const sendRps = new Map<Protocol, number>();
  /** One run of a scenario against `srv` (the throughput server, or a traced one). */
  const loadFor = async (
    s: Scenario,
    srv: BenchServer,
    durationMs: number,
    label: string,
  ): Promise<() => Promise<LoadResult>> => {
    if (s.target === "grpcjs-verify-floor") {
      // The floor does not compare codes: any phones will do, as many as it could verify twice over.
      const file = floorCodes(Math.ceil((15_000 * durationMs) / 1000), `${label}-floor`);
      return () => ours(gen(srv, s.protocol, "VerifyOtp", { codesFile: file, durationMs }));
    }
    if (s.kind === "VerifyOtp" || s.kind === "flow") {
      // Codes for twice what SendOtp managed in as long: our generator ends the run early (and says so) if
      // verify outruns that, and the rate stays right.
      const rps = Math.max(sendRps.get(s.protocol) ?? 0, 300);
      const n = Math.ceil((rps * durationMs * 2) / 1000 / (s.kind === "flow" ? 3 : 1)) + 100;
      const file = await prepare(srv, n, `${label}-${s.protocol}-${s.kind}`);
      // Always our generator: it stops when the codes run out, which wrk cannot.
      const method = s.kind === "flow" ? "flow" : "VerifyOtp";
      return () => ours(gen(srv, s.protocol, method, { codesFile: file, durationMs }));
    }
    if (s.tool === "wrk") {
      return () => wrk(srv.port, "wrk-send.lua", String(phones(10_000_000)), durationMs);
    }
    return () => ours(gen(srv, s.protocol, "SendOtp", { durationMs }));
  };
  /** Warm-up: JIT and connection set-up should not land in the first measured run. */
  const warmUp = async (t: Target, srv: BenchServer, ms: number) => {
    if (t === "express-equivalent" || t === "http-redis" || t === "http-send-floor") {
      await ours(gen(srv, "rest", "SendOtp", { durationMs: ms }));
      return;
    }
    if (t === "grpcjs-verify-floor") {
      const codesFile = floorCodes(Math.ceil((15_000 * ms) / 1000), "warm-up-floor");
      await ours(gen(srv, "grpc", "VerifyOtp", { codesFile, durationMs: ms }));
      return;
    }
    await ours(gen(srv, "grpc", "SendOtp", { durationMs: ms }));
    if (t !== "grpcjs-noop") await ours(gen(srv, "connect", "SendOtp", { durationMs: Math.ceil(ms / 2) }));
  };

  process.stdout.write(
    `bench: ${ROUNDS} round(s) of ${DURATION_MS} ms per scenario, ${CONCURRENCY} concurrent requests; servers on core ${SERVER_CORE}, load on core ${LOAD_CORE}, redis on core ${REDIS_CORE}${ONLY.length === 0 ? "" : scenarios.length === 0 ? "; no scenario, the soak only" : `; only ${scenarios.map((s) => `"${s.name}"`).join(", ")}`}\n`,
  );
  for (const t of targets) await warmUp(t, server(t), QUICK ? 300 : 2000);

  // The generator must not be the bottleneck: on the no-op server, h2load (fixed body) and wrk beside ours.
  const genCheck: Record<string, { reference: string; theirs: number; ours: number }> = {};
  for (const protocol of genProtocols) {
    const d = QUICK ? 1000 : 3000;
    const noop = server("connect-noop");
    const reference = protocol === "rest" ? "wrk" : "h2load";
    const h =
      protocol === "rest"
        ? await wrk(noop.port, "wrk-send.lua", String(phones(10_000_000)), d)
        : await h2load(noop.port, protocol, d);
    const o = await ours(gen(noop, protocol, "SendOtp", { durationMs: d, fixedBody: protocol !== "rest" }));
    if (h.failed > 0 || o.failed > 0) {
      throw new Error(
        `generator check failed: ${reference} ${h.failed}, ours ${o.failed} ${o.firstFailure ?? ""}`,
      );
    }
    genCheck[protocol] = { reference, theirs: h.rps, ours: o.rps };
    process.stdout.write(
      `generator check ${protocol}: ${reference} ${h.rps.toFixed(0)} req/s, ours ${o.rps.toFixed(0)} req/s\n`,
    );
  }

  // Throughput rounds: no server traces requests (the tracer's own CPU would be billed to the service).
  const samples = new Map<string, Sample[]>(scenarios.map((s) => [s.name, []]));
  /** req/s per round: a scenario run twice in a round (a ceiling around its service rows) counts its mean. */
  const roundRps = new Map<string, number[]>(scenarios.map((s) => [s.name, []]));
  for (let round = 1; round <= ROUNDS; round++) {
    sendRps.clear();
    const thisRound = new Map<string, number[]>();
    for (const s of roundOrder(scenarios)) {
      const srv = server(s.target);
      const sample = await measure(
        srv,
        redis,
        await loadFor(s, srv, DURATION_MS, String(round)),
        `${s.name} round ${round}`,
      );
      if (s.kind === "SendOtp") sendRps.set(s.protocol, sample.rps);
      samples.get(s.name)?.push(sample);
      thisRound.set(s.name, [...(thisRound.get(s.name) ?? []), sample.rps]);
      process.stdout.write(
        `round ${round} ${s.name}: ${sample.rps.toFixed(0)} req/s, p99 ${sample.p99Ms.toFixed(1)} ms, ${sample.cpuMicrosPerReq.toFixed(0)} µs CPU/req\n`,
      );
    }
    for (const [name, rps] of thisRound)
      roundRps.get(name)?.push(rps.reduce((a, b) => a + b, 0) / rps.length);
  }

  const med = (name: string, key: keyof Sample) => median((samples.get(name) ?? []).map((s) => s[key]));
  for (const s of scenarios) if (s.kind === "SendOtp") sendRps.set(s.protocol, med(s.name, "rps"));
  const ceilingOf: Record<Protocol, string> = {
    rest: "ceiling /api/v1 (connect-node fallback, no-op)",
    connect: "ceiling Connect JSON (connect-node, no-op)",
    grpc: "ceiling gRPC (connect-node, no-op)",
  };

  // Latency at half of peak: an open-loop run at half the median peak rate of each service scenario.
  const halfLoad: Record<
    string,
    {
      rate: number;
      p50Ms: number;
      p99Ms: number;
      /** p99 of the warm-up that preceded the measured part (HALF_WARM_UP_MS). */
      warmUpP99Ms: number | undefined;
      noopP99Ms?: number;
      /** Why there is no no-op figure at this rate. */
      noopMissing?: string;
      gc: ServerStats["gc"];
    }
  > = {};
  // Not in a profiled run: its peaks are the profiler's, and after an allocation profile the half-load run
  // failed three times of three, the service refusing sends at SMS_MAX_IN_FLIGHT (its log said so): more
  // sends than the cap were started in one turn, which a process that does not stall never sees.
  if (PROFILES) process.stdout.write("latency at half of peak: not measured in a profiled run\n");
  for (const s of PROFILES ? [] : scenarios) {
    if (s.target !== "service" || s.kind === "flow") continue;
    const svc = server("service");
    const rate = Math.max(100, Math.round(med(s.name, "rps") / 2));
    const durationMs = QUICK ? 1000 : 3000;
    const codesFile =
      s.kind === "VerifyOtp"
        ? await prepare(
            svc,
            Math.ceil((rate * (HALF_WARM_UP_MS + durationMs)) / 1000) + 50,
            `half-${s.protocol}`,
          )
        : undefined;
    const extra: Partial<GenConfig> = {
      rate,
      durationMs,
      warmUpMs: HALF_WARM_UP_MS,
      ...(codesFile ? { codesFile } : {}),
    };
    await svc.ask<ServerStats>({ op: "stats" });
    const r = await ours(gen(svc, s.protocol, s.kind === "VerifyOtp" ? "VerifyOtp" : "SendOtp", extra));
    const { gc } = await svc.ask<ServerStats>({ op: "stats" });
    if (r.failed > 0) throw new Error(`half load ${s.name}: ${r.failed} failed ${r.firstFailure ?? ""}`);
    // The same rate against the no-op server: what the generator, the machine and the stack give at this rate
    // with no work behind them, the floor the service's figure is read against.
    // Informational: a floor the no-op cannot give is reported with the reason instead of failing the bench.
    // A rate above the no-op's own peak (gRPC SendOtp's half peak is above connect-node's no-op gRPC peak) is
    // not run: the no-op would only queue until it refused streams or went away.
    const noop = servers["connect-noop"];
    const noopPeak = med(ceilingOf[s.protocol], "rps");
    let floor: { p99Ms: number } | { why: string } = { why: "no no-op server in this run" };
    if (noop && noopPeak < rate) {
      floor = { why: `above the no-op's peak of ${noopPeak.toFixed(0)} req/s` };
    } else if (noop) {
      floor = await ours(
        gen(noop, s.protocol, "SendOtp", { rate, durationMs, warmUpMs: HALF_WARM_UP_MS }),
      ).then(
        (f) => (f.failed === 0 ? f : { why: `${f.failed} of ${f.requests} failed: ${f.firstFailure ?? ""}` }),
        (err: unknown) => ({ why: String(err).split("\n")[0] ?? "" }),
      );
    }
    halfLoad[s.name] = {
      rate,
      p50Ms: r.p50Ms,
      p99Ms: r.p99Ms,
      warmUpP99Ms: r.warmUpP99Ms,
      ...("p99Ms" in floor ? { noopP99Ms: floor.p99Ms } : { noopMissing: floor.why }),
      gc,
    };
  }

  // Round trips: a separate, short run of each Redis-using scenario against a fresh process of the same
  // server with BENCH_TRACE=1. Its CPU per request beside the untraced rounds' is what the tracer costs.
  const traced = new Map<string, Sample>();
  const TRACE_MS = QUICK ? 1000 : 2000;
  for (const t of targets) {
    const mine = scenarios.filter((s) => s.target === t);
    if (!TRACEABLE.has(t) || mine.length === 0) continue;
    const srv = await startServer(t, { ...envOf(t), BENCH_TRACE: "1" });
    try {
      await warmUp(t, srv, QUICK ? 300 : 2000);
      for (const s of mine) {
        // The process is fresh: one unmeasured run of the scenario first, so the JIT is not billed to the tracer.
        await (await loadFor(s, srv, TRACE_MS, "traced-warm"))();
        const sample = await measure(srv, redis, await loadFor(s, srv, TRACE_MS, "traced"));
        traced.set(s.name, sample);
        process.stdout.write(
          `traced ${s.name}: ${sample.roundTripsMean.toFixed(2)} round trips (max ${sample.roundTripsMax}), ${sample.sentPerReq.toFixed(1)} sent/req; ${sample.cpuMicrosPerReq.toFixed(0)} µs CPU/req traced vs ${med(s.name, "cpuMicrosPerReq").toFixed(0)} untraced\n`,
        );
      }
    } finally {
      await srv.stop();
    }
  }

  // Each round's ratio to the ceiling measured around it in the same round (see roundOrder), then the median:
  // a machine whose speed wanders moves both sides of a ratio together.
  const ratio = (name: string, ceilingName: string) => {
    const mine = roundRps.get(name) ?? [];
    const theirs = roundRps.get(ceilingName) ?? [];
    return median(mine.map((x, i) => x / (theirs[i] ?? Number.NaN)));
  };
  const rows = scenarios.map((s) => {
    const rps = med(s.name, "rps");
    const t = traced.get(s.name);
    return {
      scenario: s.name,
      protocol: s.protocol,
      rps,
      p50Ms: med(s.name, "p50Ms"),
      p99Ms: med(s.name, "p99Ms"),
      halfLoadP99Ms: halfLoad[s.name]?.p99Ms,
      cpuMicrosPerReq: med(s.name, "cpuMicrosPerReq"),
      peakRssMb: Math.max(...(samples.get(s.name) ?? []).map((x) => x.peakRssMb)),
      redisCallsPerReq: med(s.name, "redisCallsPerReq"),
      // From the traced run; zero without Redis.
      sentPerReq: t ? t.sentPerReq : USES_REDIS.has(s.target) ? Number.NaN : 0,
      roundTripsMean: t ? t.roundTripsMean : USES_REDIS.has(s.target) ? Number.NaN : 0,
      roundTripsMax: t ? t.roundTripsMax : USES_REDIS.has(s.target) ? Number.NaN : 0,
      tracedCpuMicrosPerReq: t?.cpuMicrosPerReq,
      ratioToCeiling: s.kind === "ceiling" ? undefined : ratio(s.name, ceilingOf[s.protocol]),
      ratioToGrpcJs: s.protocol === "grpc" ? ratio(s.name, "ceiling gRPC (grpc-js, no-op)") : undefined,
      ratioToExpress:
        s.target === "service" && s.kind === "SendOtp" && s.protocol === "rest"
          ? ratio(s.name, EXPRESS)
          : undefined,
      ratioToHttpRedis:
        s.protocol === "rest" && (s.target === "service" || s.kind === "reference")
          ? ratio(s.name, HTTP_REDIS)
          : undefined,
      /** The service's share of what its floor (verify-floor.ts, send-floor.ts) does in the same round. */
      ratioToFloor:
        s.target !== "service"
          ? undefined
          : s.kind === "VerifyOtp" && s.protocol === "grpc"
            ? ratio(s.name, VERIFY_FLOOR)
            : s.kind === "SendOtp" && s.protocol === "rest"
              ? ratio(s.name, SEND_FLOOR)
              : undefined,
    };
  });

  const f = (x: number | undefined, d = 0) => (x === undefined || Number.isNaN(x) ? "–" : x.toFixed(d));
  const header =
    "| scenario | req/s | p50 ms | p99 ms | p99 ms at ½ peak | CPU µs/req | peak RSS MB | Redis calls/req | sent/req | round trips mean (max) | × ceiling | × grpc-js | × express | × node:http+Redis |";
  const lines = [
    header,
    `|${" --- |".repeat(14)}`,
    ...rows.map(
      (r) =>
        `| ${r.scenario} | ${f(r.rps)} | ${f(r.p50Ms, 1)} | ${f(r.p99Ms, 1)} | ${f(r.halfLoadP99Ms, 1)} | ${f(r.cpuMicrosPerReq)} | ${f(r.peakRssMb)} | ${f(r.redisCallsPerReq, 1)} | ${f(r.sentPerReq, 1)} | ${f(r.roundTripsMean, 2)} (${f(r.roundTripsMax)}) | ${f(r.ratioToCeiling, 2)} | ${f(r.ratioToGrpcJs, 2)} | ${f(r.ratioToExpress, 2)} | ${f(r.ratioToHttpRedis, 2)} |`,
    ),
  ];
  const byFloor = rows
    .filter((r) => r.ratioToFloor !== undefined && !Number.isNaN(r.ratioToFloor))
    .map((r) => `${r.scenario} ${f(r.ratioToFloor, 2)}`)
    .join("; ");
  const tracerCost = rows
    .filter((r) => r.tracedCpuMicrosPerReq !== undefined)
    .map((r) => `${r.scenario} ${f(r.tracedCpuMicrosPerReq)} vs ${f(r.cpuMicrosPerReq)}`)
    .join("; ");
  const machine = machineInfo();
  const table = lines.join("\n");
  const floors = Object.entries(halfLoad)
    .map(
      ([name, h]) =>
        `${name} ${h.p99Ms.toFixed(1)} / ${h.noopP99Ms === undefined ? `– (${h.noopMissing ?? "not run"})` : h.noopP99Ms.toFixed(1)} ms at ${h.rate} req/s (the ${HALF_WARM_UP_MS} ms warm-up before it: ${h.warmUpP99Ms?.toFixed(1) ?? "–"} ms; the service's GC meanwhile: ${h.gc.count} pauses, ${h.gc.totalMs.toFixed(0)} ms in all, the longest ${h.gc.maxMs.toFixed(1)} ms)`,
    )
    .join("; ");
  if (scenarios.length > 0)
    process.stdout.write(
      `\n${table}\n\n${byFloor ? `the service × its floor (the only work such a call cannot skip; median of the rounds): ${byFloor}\n` : ""}round trips and sent/req from a separate traced run; CPU µs/req traced vs untraced: ${tracerCost || "–"}\np99 at half of peak, the service / the connect-node no-op at the same rate: ${floors || "–"}\ngenerator check (connect-node no-op server): ${
        Object.entries(genCheck)
          .map(([p, v]) => `${p} ${v.reference} ${v.theirs.toFixed(0)} / ours ${v.ours.toFixed(0)} req/s`)
          .join("; ") || "–"
      }\nmachine: ${machine.nproc} cores, ${machine.cpu}, node ${machine.node} ${[...machine.nodeFlags, ...Object.entries(machine.env).map(([k, v]) => `${k}=${v}`)].join(" ")}, load average ${machine.loadAverage.map((x) => x.toFixed(2)).join(" ")}; ${ROUNDS} round(s) × ${DURATION_MS} ms; took ${((Date.now() - started) / 1000).toFixed(0)} s\n`,
    );
  mkdirSync(RESULTS, { recursive: true });
  const stamp = new Date().toISOString().replace(/[:.]/g, "-");
  const report = {
    when: new Date().toISOString(),
    quick: QUICK,
    only: ONLY,
    rounds: ROUNDS,
    durationMs: DURATION_MS,
    concurrency: CONCURRENCY,
    machine,
    genCheck,
    halfLoad,
    rows,
    samples: Object.fromEntries(samples),
    roundRps: Object.fromEntries(roundRps),
    traced: Object.fromEntries(traced),
    table,
  };
  if (scenarios.length > 0) writeResult(join(RESULTS, `${QUICK ? "quick" : "full"}-${stamp}.json`), report);

  let soakFailed = false;
  if (SOAK_MS > 0) {
    soakFailed = !(await soak({ svc: server("service"), redis, gen, prepare, writeCodes, sendRps }));
  }
  await redis.quit();
  // Let the servers exit on their own, then clean up whatever is left.
  await Promise.all(Object.values(servers).map((s) => s.stop()));
  if (soakFailed) throw new Error("soak failed: see above");
}

main().then(
  () => process.exit(0),
  (err: unknown) => {
    process.stderr.write(`bench failed: ${err instanceof Error ? err.stack : String(err)}\n`);
    process.exit(1);
  },
);
