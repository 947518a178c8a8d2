import { spawn } from "node:child_process";
import { readFileSync } from "node:fs";
import type { Redis } from "ioredis";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { ownRedisReason, startTestRedis, type TestRedis } from "./support/redis.js";

// The Redis-backed files that once touched data they had not written (FLUSHDB, SELECT of other databases,
// KEYS *, fixed key names) or failed outright on a given REDIS_URL. All of them take ~25 s on a loaded 2-core
// machine; the whole Redis-backed set twice that, too long to run inside the suite on every `npm test`.
const FILES = [
  "test/abuse.test.ts", // flushed db 0 between tests
  "test/user-store.test.ts", // flushed dbs 1 and 2, listed user:id:* with KEYS
  "test/ratelimit.property.test.ts", // wrote to dbs 1 and 2
  "test/refresh-store.test.ts", // KEYS *
  "test/otp-store.test.ts", // KEYS *
  "test/bench-round-trips.test.ts", // writes the keys "k", "a", "b", "h"
  "test/ops.test.ts", // stopped the server, so failed on a given URL
];
const CHILD_DEADLINE_MS = 85_000;

/** Data someone else keeps in the server REDIS_URL names, in several databases, some with a TTL. */
const FOREIGN: ReadonlyArray<{ db: number; key: string; write: (r: Redis) => Promise<unknown> }> = [
  { db: 0, key: "sentinel", write: (r) => r.set("sentinel", "must survive npm test") },
  // Names the service itself uses: an unprefixed test run would bump, read or delete them.
  { db: 0, key: "user:seq", write: (r) => r.set("user:seq", "41") },
  { db: 0, key: "user:{+919876543210}", write: (r) => r.hset("user:{+919876543210}", "id", "7") },
  { db: 0, key: "otp:{+919876543210}", write: (r) => r.hset("otp:{+919876543210}", "h", "x", "a", "0") },
  { db: 0, key: "rl:sms-global:all", write: (r) => r.set("rl:sms-global:all", "3", "EX", 3600) },
  { db: 0, key: "k", write: (r) => r.set("k", "someone's") },
  { db: 1, key: "sentinel:db1", write: (r) => r.set("sentinel:db1", "1") },
  { db: 2, key: "sentinel:db2", write: (r) => r.rpush("sentinel:db2", "a", "b") },
];

/** Every key of the first 16 databases with its serialized value and whether it expires. */
async function snapshot(client: Redis): Promise<Record<string, string>> {
  const all: Record<string, string> = {};
  for (let db = 0; db < 16; db++) {
    await client.select(db);
    let cursor = "0";
    do {
      const [next, keys] = await client.scan(cursor, "COUNT", 1000);
      cursor = next;
      for (const key of keys) {
        const [dump, pttl] = await Promise.all([client.dumpBuffer(key), client.pttl(key)]);
        all[`${db}/${key}`] = `${dump?.toString("hex")} ${pttl > 0 ? "expires" : "persists"}`;
      }
    } while (cursor !== "0");
  }
  await client.select(0);
  return all;
}

/** Runs vitest on `files` with `env` added; resolves with its exit code and output, killed at the deadline. */
function vitest(
  files: readonly string[],
  env: Record<string, string>,
): Promise<{ code: number | null; out: string }> {
  // Not this run's worker variables: the child is a vitest run of its own.
  const inherited = Object.fromEntries(Object.entries(process.env).filter(([k]) => !k.startsWith("VITEST")));
  // One project: which gRPC path serves the calls (the second project) does not change what is stored.
  const args = ["node_modules/vitest/vitest.mjs", "run", "--project", "default", ...files];
  const child = spawn(process.execPath, args, {
    env: { ...inherited, NO_COLOR: "1", FORCE_COLOR: "0", ...env },
    stdio: ["ignore", "pipe", "pipe"],
  });
  let out = "";
  child.stdout.on("data", (d: Buffer) => (out += d.toString()));
  child.stderr.on("data", (d: Buffer) => (out += d.toString()));
  const timer = setTimeout(() => child.kill("SIGKILL"), CHILD_DEADLINE_MS);
  return new Promise((resolve, reject) => {
    child.once("error", reject);
    child.once("exit", (code) => {
      clearTimeout(timer);
      resolve({ code, out });
    });
  });
}

describe.skipIf(ownRedisReason())("npm test with REDIS_URL leaves the server's other data alone", () => {
  let redis: TestRedis;
  let admin: Redis;
  beforeAll(async () => {
    // A server of this test's own even under a REDIS_URL: it is filled, inspected and thrown away.
    redis = await startTestRedis({ own: true });
    admin = redis.client();
  });
  afterAll(() => redis?.close());

  it(
    "the Redis-backed files pass against it, and every key they did not write is as it was",
    async () => {
      for (const file of FILES) {
        expect(file).not.toBe("test/redis-url-safety.test.ts");
        expect(readFileSync(file, "utf8"), `${file} is Redis-backed`).toMatch(/describeWithRedis\(/);
      }
      for (const { db, write } of FOREIGN) {
        await admin.select(db);
        await write(admin);
      }
      await admin.select(0);
      const before = await snapshot(admin);
      expect(Object.keys(before)).toHaveLength(FOREIGN.length);

      const run = await vitest(FILES, { REDIS_URL: redis.url });
      expect(run.code, run.out.slice(-4000)).toBe(0);
      // It really ran, on the given server: tests passed, and the outage drill said why it stood aside.
      expect(run.out).toMatch(/Tests\s+\d+ passed/);
      expect(run.out).toMatch(/stops or freezes Redis: SKIPPED for the server REDIS_URL names/);

      // Untouched, and nothing left behind: each run removes exactly the keys it wrote.
      expect(await snapshot(admin)).toEqual(before);
    },
    CHILD_DEADLINE_MS + 15_000,
  );
});
