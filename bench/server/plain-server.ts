import type { Server } from "node:http";
import type { Redis } from "ioredis";

/** A bench server built on a plain `node:http` server with a Redis client of its own. */
export interface PlainServer {
  readonly server: Server;
  /** Listens and resolves with the bound port. */
  listen(port: number, host: string): Promise<number>;
  /** Stops listening, then quits Redis. */
  close(): Promise<void>;
}

export function plainServer(server: Server, redis: Redis): PlainServer {
  return {
    server,
    listen(port, host) {
      return new Promise((resolve, reject) => {
        server.once("error", reject);
        server.listen(port, host, () => {
          const addr = server.address();
          resolve(typeof addr === "object" && addr ? addr.port : port);
        });
      });
    },
    async close() {
      await new Promise<void>((resolve) => server.close(() => resolve()));
      await redis.quit();
    },
  };
}
