import { readFileSync } from "node:fs";
import type { EnvReader } from "../env-reader.js";
import { DEFAULT_SERVER_LIMITS, type ServerLimits } from "./one-port.js";

/** Share of the open-file limit client connections may take by default; the rest is for Redis and SMS calls. */
const CONNECTION_SHARE = 0.8;

/**
 * Reads the connection and HTTP/2 bounds (README "HTTP/2 and connection limits"). HTTP/1's timeouts keep
 * their defaults. `fileLimit` gives the process's open-file limit (`ulimit -n`), undefined where it cannot be read.
 */
export function readServerLimits(
  r: EnvReader,
  fileLimit: () => number | undefined = openFileLimit,
): ServerLimits {
  const d = DEFAULT_SERVER_LIMITS;
  const files = fileLimit();
  const defaultCap = files === undefined ? 0 : Math.floor(files * CONNECTION_SHARE);
  return {
    ...d,
    handshakeTimeoutMs: r.int("HTTP2_HANDSHAKE_TIMEOUT_MS", d.handshakeTimeoutMs, 100, 600_000),
    idleTimeoutMs: r.int("HTTP2_IDLE_TIMEOUT_MS", d.idleTimeoutMs, 1_000, 86_400_000),
    streamTimeoutMs: r.int("HTTP2_STREAM_TIMEOUT_MS", d.streamTimeoutMs, 100, 3_600_000),
    maxConcurrentStreams: r.int("HTTP2_MAX_CONCURRENT_STREAMS", d.maxConcurrentStreams, 1, 10_000),
    maxHeaderListSize: r.int("HTTP2_MAX_HEADER_LIST_SIZE", d.maxHeaderListSize, 1_024, 1_048_576),
    maxConnections: r.int("MAX_CONNECTIONS", defaultCap, 0, 10_000_000),
  };
}

/** The soft limit on open files, from /proc on Linux; undefined elsewhere or when unlimited. */
export function openFileLimit(procLimits = "/proc/self/limits"): number | undefined {
  let text: string;
  try {
    text = readFileSync(procLimits, "utf8");
  } catch {
    return undefined;
  }
  const soft = /^Max open files\s+(\d+)/m.exec(text)?.[1];
  return soft === undefined ? undefined : Number(soft);
}
