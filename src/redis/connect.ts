import { Redis } from "ioredis";

/**
 * The service's Redis client. Auto-pipelining sends commands issued in the same tick as one write, so the
 * independent commands of a request share a round trip.
 */
export function connectRedis(url: string): Redis {
  return new Redis(url, {
    enableAutoPipelining: true,
    maxRetriesPerRequest: 1,
    connectTimeout: 2_000,
    lazyConnect: false,
  });
}
