import { createServer, type Server } from "node:http";
import { OTP_SENT_MESSAGE } from "../../src/login/model.js";
import { OneWritePerTurnRedis } from "../../src/redis/one-write-per-turn.js";
import { type PlainServer, plainServer } from "./plain-server.js";

/**
 * The bare ceiling with Redis in it: node:http, the body read and parsed, one Redis round trip (`SET` of the
 * phone with a 600 s expiry), a JSON answer. The client is the service's (no auto-pipelining, one socket write
 * per turn of the event loop).
 * What the service costs above this is its own work.
 */
export function httpRedisServer(redisUrl: string): PlainServer {
  const redis = new OneWritePerTurnRedis(redisUrl, { enableAutoPipelining: false });
  const server: Server = createServer((req, res) => {
    const chunks: Buffer[] = [];
    req.on("data", (c: Buffer) => chunks.push(c));
    req.on("end", () => {
      let phone: unknown;
      try {
        phone = (JSON.parse(Buffer.concat(chunks).toString("utf8")) as { phone?: unknown }).phone;
      } catch {
        phone = undefined;
      }
      if (typeof phone !== "string") {
        res.writeHead(400, { "content-type": "application/json" }).end('{"detail":"phone is required"}');
        return;
      }
      redis.set(`bench:phone:${phone}`, phone, "EX", 600).then(
        () => {
          const payload = JSON.stringify({ message: OTP_SENT_MESSAGE, phone });
          res.writeHead(200, {
            "content-type": "application/json",
            "content-length": Buffer.byteLength(payload),
          });
          res.end(payload);
        },
        () => {
          res.writeHead(503, { "content-type": "application/json" }).end('{"detail":"redis"}');
        },
      );
    });
  });
  return plainServer(server, redis);
}
