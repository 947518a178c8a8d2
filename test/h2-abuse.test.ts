import { type ChildProcess, spawn } from "node:child_process";
import { readdirSync, readFileSync } from "node:fs";
import http2 from "node:http2";
import { createClient } from "@connectrpc/connect";
import { createGrpcTransport } from "@connectrpc/connect-node";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { AuthService } from "../gen/auth/v1/auth_pb.js";
import { GENEROUS_LIMITS } from "./support/app.js";
import { uniquePhone } from "./support/capture-sms.js";
import {
  continuation,
  data,
  ErrorCode,
  emptySettings,
  FrameType,
  getBlock,
  header,
  headers,
  PREFACE,
  RawH2,
  requestBlock,
  settingsAck,
} from "./support/h2-frames.js";

/** Short bounds, so each one fires within a test; generous next to a loaded 2-core machine's delays. */
const HANDSHAKE_MS = 1_500;
const IDLE_MS = 8_000;
const STREAM_MS = 2_500;
const MAX_STREAMS = 20;
const FILE_LIMIT = 256;
const MAX_CONNECTIONS = 150;

/** Polls `probe` until it holds; no fixed sleeps. */
async function until(probe: () => boolean, what: string, ms: number): Promise<void> {
  const deadline = Date.now() + ms;
  while (!probe()) {
    if (Date.now() > deadline) throw new Error(`timed out after ${ms} ms waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 50));
  }
}

let child: ChildProcess;
let out = "";
let port: number;
let baseline: number;
let baseUrl: string;

const fds = () => readdirSync(`/proc/${child.pid}/fd`).length;
const rssMb = () =>
  Number(/^VmRSS:\s+(\d+) kB/m.exec(readFileSync(`/proc/${child.pid}/status`, "utf8"))?.[1]) / 1024;

/** Server sockets on our port in CLOSE-WAIT (state 08 in /proc/net/tcp), the symptom of the leak. */
function closeWait(): number {
  const hexPort = port.toString(16).toUpperCase().padStart(4, "0");
  return readFileSync(`/proc/${child.pid}/net/tcp`, "utf8")
    .split("\n")
    .slice(1)
    .filter((line) => {
      const cols = line.trim().split(/\s+/);
      return cols[1]?.endsWith(`:${hexPort}`) && cols[3] === "08";
    }).length;
}

/** Lines the service logged with this reason. */
const logged = (reason: string) => out.split("\n").filter((l) => l.includes(`"reason":"${reason}"`)).length;
/** Waits for `n` such lines: the service writes its log in batches, at most LOG_FLUSH_MS after each line. */
const untilLogged = (reason: string, n: number) =>
  until(() => logged(reason) >= n, `${n} log line(s) with reason "${reason}"`, 10_000);

async function waitForOutput(re: RegExp, ms = 20_000): Promise<RegExpExecArray> {
  let m: RegExpExecArray | null = null;
  await until(
    () => {
      if (child.exitCode !== null) throw new Error(`service exited ${child.exitCode}: ${out}`);
      m = re.exec(out);
      return m !== null;
    },
    `${re}`,
    ms,
  );
  return m as unknown as RegExpExecArray;
}

/** A whole login over gRPC on HTTP/2, the code read from the development SMS provider's output. */
async function bystanderLogin(): Promise<void> {
  const auth = createClient(AuthService, createGrpcTransport({ baseUrl }));
  const phone = uniquePhone();
  await auth.sendOtp({ phone });
  const [, otp] = await waitForOutput(new RegExp(`OTP for \\${phone}: (\\d+)`));
  const verified = await auth.verifyOtp({ phone, otp: otp ?? "" });
  expect(verified.accessToken).not.toBe("");
}

/** Opens `n` connections (`concurrency` at a time), sends each `frames` and hangs up. */
async function hitAndRun(n: number, frames: () => Buffer[], concurrency = 50): Promise<RawH2[]> {
  const all: RawH2[] = [];
  for (let i = 0; i < n; i += concurrency) {
    const batch = await Promise.all(
      Array.from({ length: Math.min(concurrency, n - i) }, () => RawH2.open(port)),
    );
    for (const raw of batch) {
      raw.send(...frames());
      raw.socket.end();
    }
    all.push(...batch);
  }
  return all;
}

const backToBaseline = (what: string) =>
  until(
    () => fds() <= baseline + 4 && closeWait() === 0,
    `${what}: fds back to ${baseline}`,
    4 * HANDSHAKE_MS + 10_000,
  );

beforeAll(async () => {
  const env: Record<string, string | undefined> = {
    PATH: process.env.PATH,
    HOST: "127.0.0.1",
    PORT: "0",
    LOG_LEVEL: "info",
    ...GENEROUS_LIMITS,
    HTTP2_HANDSHAKE_TIMEOUT_MS: String(HANDSHAKE_MS),
    HTTP2_IDLE_TIMEOUT_MS: String(IDLE_MS),
    HTTP2_STREAM_TIMEOUT_MS: String(STREAM_MS),
    HTTP2_MAX_CONCURRENT_STREAMS: String(MAX_STREAMS),
    MAX_CONNECTIONS: String(MAX_CONNECTIONS),
  };
  // `exec`: the service is the shell's process, so its pid is the one /proc is read for.
  child = spawn(
    "bash",
    ["-c", `ulimit -n ${FILE_LIMIT} && exec "$0" --import tsx src/main.ts`, process.execPath],
    {
      env,
      stdio: ["ignore", "pipe", "pipe"],
    },
  );
  child.stdout?.on("data", (d: Buffer) => (out += d.toString()));
  child.stderr?.on("data", (d: Buffer) => (out += d.toString()));
  const [, p] = await waitForOutput(/listening on http:\/\/127\.0\.0\.1:(\d+)/);
  port = Number(p);
  baseUrl = `http://127.0.0.1:${port}`;
  // A first login loads whatever the service loads lazily, so the baseline is its steady state.
  await bystanderLogin();
  await until(() => fds() < FILE_LIMIT, "the service to settle", 5_000);
  baseline = fds();
}, 40_000);

afterAll(() => {
  child?.kill("SIGKILL");
});

describe("HTTP/2 abuse against the real service (ulimit -n 256)", () => {
  it("reaps connections that provoke a GOAWAY and hang up, more of them than the file limit", async () => {
    const kinds: Record<string, () => Buffer[]> = {
      "DATA on stream 0": () => [PREFACE, emptySettings(), data(0, Buffer.from("hi"))],
      "header block past maxHeaderListSize": () => [
        PREFACE,
        emptySettings(),
        headers(1, requestBlock("/api/v1/auth/send-otp"), { endHeaders: false }),
        ...Array.from({ length: 200 }, (_, i) => continuation(1, header(`x-${i}`, "y".repeat(120)))),
        continuation(1, header("x-end", "y"), true),
      ],
      "HEADERS frame past the frame size": () => [
        PREFACE,
        emptySettings(),
        headers(
          1,
          requestBlock(
            "/api/v1/auth/send-otp",
            Array.from({ length: 200 }, (_, i) => header(`x-${i}`, "y".repeat(120))),
          ),
        ),
      ],
      "CONTINUATION flood": () => [
        PREFACE,
        emptySettings(),
        headers(1, requestBlock("/api/v1/auth/send-otp"), { endHeaders: false }),
        ...Array.from({ length: 2_000 }, () => continuation(1, header("a", "b"))),
      ],
    };
    const bystanders: Promise<void>[] = [];
    for (const [kind, frames] of Object.entries(kinds)) {
      const conns = await hitAndRun(100, frames);
      bystanders.push(bystanderLogin());
      // Each was told off: a GOAWAY (or a reset stream) came back.
      const sample = conns[0] as RawH2;
      await until(
        () =>
          sample.received(FrameType.GOAWAY).length + sample.received(FrameType.RST_STREAM).length > 0 ||
          sample.isClosed,
        `${kind}: an answer`,
        10_000,
      );
      await backToBaseline(kind);
    }
    await Promise.all(bystanders);
    await untilLogged("no ping answer", 1);
  }, 55_000);

  it("closes connections that stop after the preface, or before SETTINGS, within the handshake timeout", async () => {
    const started = Date.now();
    const conns = await Promise.all(Array.from({ length: 60 }, () => RawH2.open(port)));
    // Half send the whole preface but no SETTINGS; half stop where it is only known to be HTTP/2.
    for (const [i, raw] of conns.entries()) raw.send(i % 2 === 0 ? PREFACE : PREFACE.subarray(0, 16));
    const login = bystanderLogin();
    await until(
      () => conns.every((c) => c.isClosed),
      "every half-open handshake to be closed",
      HANDSHAKE_MS + 10_000,
    );
    await login;
    expect(Date.now() - started).toBeGreaterThanOrEqual(HANDSHAKE_MS * 0.9);
    await untilLogged("handshake timeout", 60);
    await backToBaseline("half-open handshakes");
  }, 30_000);

  it("resets a stream whose request stops half way, and keeps the session", async () => {
    const raw = await RawH2.open(port, { answerPings: true });
    raw.send(PREFACE, emptySettings(), settingsAck());
    const started = Date.now();
    raw.send(headers(1, requestBlock("/api/v1/auth/send-otp")), data(1, Buffer.from('{"phone":')));
    await until(
      () => raw.received(FrameType.RST_STREAM, ErrorCode.CANCEL).length > 0,
      "RST_STREAM",
      STREAM_MS + 10_000,
    );
    expect(Date.now() - started).toBeGreaterThanOrEqual(STREAM_MS * 0.9);
    await untilLogged("stream timeout", 1);
    // The stream, not the connection: a request on the same session is still served.
    raw.send(headers(3, getBlock("/healthz"), { endStream: true }));
    await until(
      () => raw.frames.some((f) => f.type === FrameType.HEADERS && f.streamId === 3),
      "an answer",
      10_000,
    );
    raw.socket.destroy();
  }, 30_000);

  it("refuses streams past maxConcurrentStreams and keeps memory bounded", async () => {
    const rssBefore = rssMb();
    const floods = await Promise.all(
      Array.from({ length: 20 }, () => RawH2.open(port, { answerPings: true })),
    );
    for (const raw of floods) {
      // Our SETTINGS are not acknowledged, so the server refuses the extra streams one by one.
      raw.send(
        PREFACE,
        emptySettings(),
        ...Array.from({ length: 300 }, (_, i) =>
          headers(1 + 2 * i, getBlock("/healthz"), { endStream: true }),
        ),
      );
    }
    const login = bystanderLogin();
    for (const raw of floods) {
      await until(
        () => raw.received(FrameType.RST_STREAM, ErrorCode.REFUSED_STREAM).length > 0 || raw.isClosed,
        "refused streams",
        10_000,
      );
      const answered = raw.frames.filter((f) => f.type === FrameType.HEADERS).length;
      expect(answered).toBeLessThanOrEqual(MAX_STREAMS);
    }
    const refused = floods.reduce(
      (n, r) => n + r.received(FrameType.RST_STREAM, ErrorCode.REFUSED_STREAM).length,
      0,
    );
    expect(refused).toBeGreaterThan(20 * 50);
    await login;
    expect(rssMb() - rssBefore).toBeLessThan(64);
    for (const raw of floods) raw.socket.destroy();
    await backToBaseline("stream floods");
  }, 30_000);

  it("answers connections past MAX_CONNECTIONS with 503 or GOAWAY, and serves again once they are gone", async () => {
    const held = await Promise.all(
      Array.from({ length: MAX_CONNECTIONS }, () => RawH2.open(port, { answerPings: true })),
    );
    for (const raw of held) raw.send(PREFACE, emptySettings(), settingsAck());
    // A connect event only means the kernel queued it; the server's SETTINGS mean the service accepted it.
    await until(
      () => held.every((raw) => raw.received(FrameType.SETTINGS).length > 0),
      "the service to accept every held connection",
      15_000,
    );
    const extraH2 = await RawH2.open(port);
    extraH2.send(PREFACE, emptySettings());
    const extraH1 = await RawH2.open(port);
    let h1Answer = "";
    extraH1.socket.on("data", (d: Buffer) => (h1Answer += d.toString("latin1")));
    extraH1.socket.write("GET /healthz HTTP/1.1\r\nhost: x\r\n\r\n");
    await until(() => extraH2.isClosed && extraH1.isClosed, "the extra connections to be refused", 10_000);
    expect(extraH2.received(FrameType.GOAWAY, ErrorCode.REFUSED_STREAM)).toHaveLength(1);
    expect(h1Answer).toMatch(/^HTTP\/1\.1 503 /);
    expect(fds()).toBeLessThan(FILE_LIMIT - 50);
    await untilLogged("connection cap", 1);
    for (const raw of held) raw.socket.destroy();
    await backToBaseline("held connections");
    await bystanderLogin();
  }, 30_000);

  it("keeps a healthy idle session past several PINGs, then closes it with GOAWAY after the idle timeout", async () => {
    const session = http2.connect(baseUrl);
    session.on("error", () => {});
    const started = Date.now();
    let goawayAt: number | undefined;
    session.once("goaway", (code: number) => {
      if (code === http2.constants.NGHTTP2_NO_ERROR) goawayAt = Date.now();
    });
    const stream = session.request({ ":path": "/healthz" });
    stream.resume();
    stream.end();
    await until(() => goawayAt !== undefined, "GOAWAY", IDLE_MS + 15_000);
    expect((goawayAt ?? 0) - started).toBeGreaterThanOrEqual(IDLE_MS * 0.9);
    await untilLogged("idle", 1);
    session.destroy();
    await backToBaseline("idle session");
  }, 40_000);
});
