import { writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { describe, expect, it } from "vitest";
import { EnvReader } from "../src/env-reader.js";
import { openFileLimit, readServerLimits } from "../src/http/limits-config.js";

describe("server limits from the environment", () => {
  it("has the documented defaults, the connection cap at 80% of the file limit", () => {
    const r = new EnvReader({});
    expect(readServerLimits(r, () => 1024)).toMatchObject({
      handshakeTimeoutMs: 5_000,
      idleTimeoutMs: 120_000,
      streamTimeoutMs: 30_000,
      maxConcurrentStreams: 100,
      maxHeaderListSize: 16_384,
      maxConnections: 819,
      requestTimeoutMs: 30_000,
    });
    expect(readServerLimits(r, () => undefined).maxConnections).toBe(0);
    expect(r.problems).toEqual([]);
  });

  it("reads each variable and names the bad ones", () => {
    const r = new EnvReader({
      HTTP2_HANDSHAKE_TIMEOUT_MS: "2000",
      HTTP2_IDLE_TIMEOUT_MS: "60000",
      HTTP2_STREAM_TIMEOUT_MS: "soon",
      HTTP2_MAX_CONCURRENT_STREAMS: "0",
      MAX_CONNECTIONS: "0",
    });
    const limits = readServerLimits(r, () => 1024);
    expect(limits).toMatchObject({ handshakeTimeoutMs: 2_000, idleTimeoutMs: 60_000, maxConnections: 0 });
    expect(r.problems.join("\n")).toMatch(/HTTP2_STREAM_TIMEOUT_MS must be a whole number/);
    expect(r.problems.join("\n")).toMatch(/HTTP2_MAX_CONCURRENT_STREAMS must be between 1 and/);
  });

  it("reads the soft open-file limit from /proc", () => {
    const file = join(tmpdir(), `limits-${process.pid}`);
    writeFileSync(file, "Limit  Soft Limit  Hard Limit  Units\nMax open files  256  4096  files\n");
    expect(openFileLimit(file)).toBe(256);
    expect(openFileLimit(join(tmpdir(), "no-such-file"))).toBeUndefined();
  });
});
