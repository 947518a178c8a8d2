import { type ChildProcess, execFileSync, spawn } from "node:child_process";
import { mkdtempSync, rmSync } from "node:fs";
import { createServer } from "node:net";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { Redis } from "ioredis";

/**
 * A Redis for one test file: its own `redis-server` on a free port (never the machine's 6379, never anyone's
 * data), or `REDIS_URL` when the caller gives one. `stop()`/`start()` let failure tests take it away and
 * bring it back on the same port.
 */
export interface TestRedis {
  readonly url: string;
  /** Whether this harness owns the server (and can stop it). */
  readonly owned: boolean;
  stop(): Promise<void>;
  start(): Promise<void>;
  /** Freezes the server (SIGSTOP): connections stay open but nothing answers, like a hung or partitioned Redis. */
  pause(): void;
  /** Thaws a paused server (SIGCONT). */
  resume(): void;
  /** A fresh client; closed by `close()`. */
  client(): Redis;
  close(): Promise<void>;
}

export function redisServerAvailable(): boolean {
  try {
    execFileSync("redis-server", ["--version"], { stdio: "ignore" });
    return true;
  } catch {
    return false;
  }
}

/**
 * Whether Redis-backed suites can run. Where neither REDIS_URL nor redis-server exists they are skipped
 * loudly, except under CI=true, where that is a failure.
 */
export function redisReason(): string | undefined {
  if (process.env.REDIS_URL || redisServerAvailable()) return undefined;
  const why =
    "no redis-server on PATH and no REDIS_URL: Redis-backed tests are SKIPPED (apt-get install redis-server)";
  if (process.env.CI === "true") throw new Error(`${why} — refusing to skip under CI=true`);
  console.warn(`\n!!! ${why}\n`);
  return why;
}

async function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const srv = createServer();
    srv.unref();
    srv.on("error", reject);
    srv.listen(0, "127.0.0.1", () => {
      const addr = srv.address();
      srv.close(() => (typeof addr === "object" && addr ? resolve(addr.port) : reject(new Error("no port"))));
    });
  });
}

export async function startTestRedis(): Promise<TestRedis> {
  const clients: Redis[] = [];
  const client = (url: string) => () => {
    const c = new Redis(url, { lazyConnect: false, maxRetriesPerRequest: 2 });
    clients.push(c);
    return c;
  };
  const closeClients = async () => {
    await Promise.all(clients.splice(0).map((c) => c.quit().catch(() => c.disconnect())));
  };

  const given = process.env.REDIS_URL;
  if (given) {
    return {
      url: given,
      owned: false,
      stop: () => Promise.reject(new Error("cannot stop a REDIS_URL server")),
      start: () => Promise.resolve(),
      pause: () => {
        throw new Error("cannot pause a REDIS_URL server");
      },
      resume: () => {},
      client: client(given),
      close: closeClients,
    };
  }

  const port = await freePort();
  const dir = mkdtempSync(join(tmpdir(), "otp-auth-redis-"));
  let proc: ChildProcess | undefined;
  const start = async () => {
    const child = spawn(
      "redis-server",
      ["--port", String(port), "--bind", "127.0.0.1", "--save", "", "--appendonly", "no", "--dir", dir],
      { stdio: ["ignore", "pipe", "pipe"] },
    );
    proc = child;
    await new Promise<void>((resolve, reject) => {
      let out = "";
      const onData = (d: Buffer) => {
        out += d.toString();
        if (out.includes("Ready to accept connections")) {
          child.stdout?.off("data", onData);
          child.stdout?.resume();
          resolve();
        }
      };
      child.stdout?.on("data", onData);
      child.once("exit", (code) => reject(new Error(`redis-server exited (${code}): ${out.slice(-500)}`)));
    });
  };
  const stop = async () => {
    const p = proc;
    proc = undefined;
    if (!p || p.exitCode !== null) return;
    await new Promise<void>((resolve) => {
      p.once("exit", () => resolve());
      p.kill("SIGKILL");
    });
  };
  await start();
  const url = `redis://127.0.0.1:${port}`;
  return {
    url,
    owned: true,
    stop,
    start,
    pause: () => proc?.kill("SIGSTOP"),
    resume: () => proc?.kill("SIGCONT"),
    client: client(url),
    close: async () => {
      await closeClients();
      await stop();
      rmSync(dir, { recursive: true, force: true });
    },
  };
}
