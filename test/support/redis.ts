import { type ChildProcess, execFileSync, spawn } from "node:child_process";
import { randomBytes } from "node:crypto";
import { mkdtempSync, rmSync } from "node:fs";
import { createServer } from "node:net";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { Redis } from "ioredis";
import { afterAll, beforeAll, describe } from "vitest";

/**
 * Keys under one prefix of one Redis. The prefix rides in the URL (`?keyPrefix=`, which ioredis reads), so the
 * service itself, given that URL as REDIS_URL, writes every one of its keys under it: its stores pass all their
 * keys to scripts as KEYS and to commands as key arguments, which ioredis prefixes, and none is built inside
 * a script. What ioredis does not prefix are patterns (KEYS, SCAN MATCH) and FLUSHDB, which is why `keys()`
 * is here and nothing here flushes.
 */
export interface RedisScope {
  /** A redis:// URL for the service or a client; every key written through it carries `prefix`. */
  readonly url: string;
  readonly prefix: string;
  /** A fresh client on this scope; closed by the harness. */
  client(): Redis;
  /** This scope's keys matching a glob, without the prefix (so they read as the service names them). */
  keys(pattern?: string): Promise<string[]>;
  /**
   * An empty keyspace nobody else uses: for service-wide counters (the hourly SMS budget, `user:seq`) that
   * would otherwise carry over from one test to the next. Replaces a FLUSHDB, which a shared server forbids.
   */
  fresh(): RedisScope;
}

/**
 * A Redis for one test file: its own `redis-server` on a free port (never the machine's 6379, never anyone's
 * data), or `REDIS_URL` when the caller gives one. A given server is only written under a prefix unique to
 * this run, and `close()` deletes exactly the keys under it. `stop()`/`start()`/`pause()` are for outage
 * drills, which only an owned server allows.
 */
export interface TestRedis extends RedisScope {
  /** Whether this harness owns the server (and can stop it). */
  readonly owned: boolean;
  stop(): Promise<void>;
  start(): Promise<void>;
  /** Freezes the server (SIGSTOP): connections stay open but nothing answers, like a hung or partitioned Redis. */
  pause(): void;
  /** Thaws a paused server (SIGCONT). */
  resume(): void;
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

/** Skips loudly, except under CI=true, where a skipped suite would pass unnoticed: there it is a failure. */
function skipping(why: string): string {
  if (process.env.CI === "true") throw new Error(`${why} — refusing to skip under CI=true`);
  console.warn(`\n!!! ${why}\n`);
  return why;
}

/**
 * An outage drill with a REDIS_URL: skipped by design (the server is someone else's), so never an error,
 * CI or not; CI itself never sets REDIS_URL, so there the drills always run on a server of their own.
 */
function givenServerSkip(name: string): string {
  const why = `"${name}" stops or freezes Redis: SKIPPED for the server REDIS_URL names`;
  console.warn(`\n!!! ${why}\n`);
  return why;
}

/** Whether Redis-backed suites can run: undefined when they can, else why not. */
export function redisReason(): string | undefined {
  if (process.env.REDIS_URL || redisServerAvailable()) return undefined;
  return skipping(
    "no redis-server on PATH and no REDIS_URL: Redis-backed tests are SKIPPED (apt-get install redis-server)",
  );
}

/** Whether suites that need a server of their own (to stop, freeze or wipe it) can run. */
export function ownRedisReason(): string | undefined {
  if (redisServerAvailable()) return undefined;
  return skipping("no redis-server on PATH: tests that need a Redis of their own are SKIPPED");
}

export interface DescribeWithRedisOptions {
  /**
   * The tests stop or freeze the server. Never done to a server named by REDIS_URL (someone else's, maybe
   * shared): with one given, the suite is skipped with a notice. Drills always run on a server of their own.
   */
  readonly outage?: boolean;
}

/**
 * `describe` with a Redis for its tests: started before them and closed (its keys removed, or its server
 * stopped) after them, or skipped with the reason shown in the suite's name when there can be none. The
 * `redis` handed to `body` is usable inside hooks and tests, not while the suite is being collected.
 */
export function describeWithRedis(
  name: string,
  body: (redis: TestRedis) => void,
  opts: DescribeWithRedisOptions = {},
): void {
  const skip = opts.outage && process.env.REDIS_URL ? givenServerSkip(name) : redisReason();
  describe.skipIf(skip)(skip ? `${name} [skipped: ${skip}]` : name, () => {
    let started: TestRedis | undefined;
    // Registered before anything `body` adds, so (hooks run as a stack) it closes after the apps using it.
    beforeAll(async () => {
      started = await startTestRedis();
    });
    afterAll(() => started?.close());
    const get = (): TestRedis => {
      if (!started) throw new Error(`the Redis of "${name}" is used before its beforeAll ran`);
      return started;
    };
    body({
      get url() {
        return get().url;
      },
      get prefix() {
        return get().prefix;
      },
      get owned() {
        return get().owned;
      },
      client: () => get().client(),
      keys: (pattern) => get().keys(pattern),
      fresh: () => get().fresh(),
      stop: () => get().stop(),
      start: () => get().start(),
      pause: () => get().pause(),
      resume: () => get().resume(),
      close: () => get().close(),
    });
  });
}

export async function freePort(): Promise<number> {
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

const globChars = /[*?[\]\\]/g;
const escapeGlob = (s: string) => s.replace(globChars, (c) => `\\${c}`);

/** Keys matching a glob, by SCAN (not KEYS, which blocks a server others may be using). */
async function scan(raw: Redis, match: string): Promise<string[]> {
  const found: string[] = [];
  let cursor = "0";
  do {
    const [next, batch] = await raw.scan(cursor, "MATCH", match, "COUNT", 1000);
    cursor = next;
    found.push(...batch);
  } while (cursor !== "0");
  return [...new Set(found)];
}

/**
 * @param own start a server of this harness's own even when REDIS_URL is set (for a test that must be free to
 * fill, inspect and wipe it).
 */
export async function startTestRedis(opts: { readonly own?: boolean } = {}): Promise<TestRedis> {
  const clients: Redis[] = [];
  const track = (c: Redis) => {
    clients.push(c);
    return c;
  };
  const closeClients = async () => {
    await Promise.all(clients.splice(0).map((c) => c.quit().catch(() => c.disconnect())));
  };

  const given = opts.own ? undefined : process.env.REDIS_URL;
  const base = new URL(given ?? `redis://127.0.0.1:${await freePort()}`);
  // A prefix the caller's URL already has is kept: ours goes beneath it.
  const outer = base.searchParams.get("keyPrefix") ?? "";
  base.searchParams.delete("keyPrefix");
  const rawUrl = base.toString();
  let raw: Redis | undefined;
  const rawClient = () => {
    raw ??= track(new Redis(rawUrl, { maxRetriesPerRequest: 2 }));
    return raw;
  };
  let scopes = 0;
  const scope = (prefix: string): RedisScope => {
    const url = new URL(rawUrl);
    if (prefix) url.searchParams.set("keyPrefix", prefix);
    return {
      url: url.toString(),
      prefix,
      client: () => track(new Redis(url.toString(), { maxRetriesPerRequest: 2 })),
      keys: async (pattern = "*") =>
        (await scan(rawClient(), `${escapeGlob(prefix)}${pattern}`)).map((k) => k.slice(prefix.length)),
      // No braces in a prefix: the first {...} of every key stays the service's Redis Cluster hash tag.
      fresh: () => scope(`${prefix}s${++scopes}:`),
    };
  };

  if (given) {
    const root = scope(`${outer}otp-auth-test:${process.pid}-${randomBytes(6).toString("hex")}:`);
    return {
      ...root,
      owned: false,
      stop: () => Promise.reject(new Error("cannot stop a REDIS_URL server")),
      start: () => Promise.reject(new Error("cannot start a REDIS_URL server")),
      pause: () => {
        throw new Error("cannot pause a REDIS_URL server");
      },
      resume: () => {
        throw new Error("cannot resume a REDIS_URL server");
      },
      close: async () => {
        try {
          // Only what this run wrote: every key under its prefix, fresh scopes included.
          const mine = await scan(rawClient(), `${escapeGlob(root.prefix)}*`);
          for (let i = 0; i < mine.length; i += 500) await rawClient().unlink(...mine.slice(i, i + 500));
        } finally {
          await closeClients();
        }
      },
    };
  }

  const port = Number(base.port);
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
  // Our own server: the service's keys as production names them, no prefix.
  return {
    ...scope(outer),
    owned: true,
    stop,
    start,
    pause: () => proc?.kill("SIGSTOP"),
    resume: () => proc?.kill("SIGCONT"),
    close: async () => {
      await closeClients();
      await stop();
      rmSync(dir, { recursive: true, force: true });
    },
  };
}
