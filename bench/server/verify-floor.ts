import type { ServiceImpl } from "@connectrpc/connect";
import type * as grpc from "@grpc/grpc-js";
import type { Redis } from "ioredis";
import type { AuthService } from "../../gen/auth/v1/auth_pb.js";
import { newUser } from "../../src/login/model.js";
import { mintRefreshToken } from "../../src/login/refresh-token.js";
import { AccessTokens } from "../../src/tokens/access-tokens.js";
import { grpcJsServer } from "./noop.js";

/**
 * A floor for gRPC VerifyOtp: what any VerifyOtp must at least do, on the faster gRPC stack (@grpc/grpc-js)
 * with this project's leanest primitives, and nothing else. Per call: a first round trip that takes the code
 * (GETDEL; its answer is not compared), then the user and the refresh token written together in a second
 * (two SETs in one socket write, as the service's second round trip holds its user and token commands), an
 * Ed25519 access token signed as the service signs it (`AccessTokens`, a hand-rolled compact JWS over
 * `crypto.sign`), a refresh token minted as the service mints it. No limits, no code hashing, no audit, no
 * log line, no metrics, no request id. Keys expire (a bench Redis keeps nothing that the soak's TTL check
 * would flag). The service's VerifyOtp over gRPC cannot reach more than this floor's share of the grpc-js
 * no-op, whatever its own code does.
 * `redis` is the service's client (`OneWritePerTurnRedis`, no auto-pipelining); `close` quits it, as the SendOtp
 * floor's does.
 */
export async function startVerifyFloor(
  redis: Redis,
  port: number,
  host: string,
): Promise<{ close(): Promise<void> }> {
  const tokens = await AccessTokens.create({ issuer: "bench", audience: "bench", ttlSeconds: 900 });
  let lastId = 0;
  const impl: Partial<ServiceImpl<typeof AuthService>> = {
    async verifyOtp(req) {
      await redis.getdel(`floor:otp:${req.phone}`);
      const user = newUser(++lastId, req.phone);
      const refresh = mintRefreshToken(user.id);
      await Promise.all([
        redis.set(`floor:user:${user.phone}`, JSON.stringify(user), "EX", 600),
        redis.set(`floor:rt:${refresh.ref.hash}`, refresh.ref.family, "EX", 600),
      ]);
      const access = await tokens.sign(user, refresh.ref.family);
      return {
        accessToken: access.token,
        refreshToken: refresh.token,
        tokenType: "bearer",
        expiresIn: access.expiresIn,
        user: { ...user, id: BigInt(user.id) },
      };
    },
  };
  const server: grpc.Server = await grpcJsServer(impl, port, host);
  return {
    async close() {
      await new Promise<void>((resolve) => server.tryShutdown(() => resolve()));
      await redis.quit();
    },
  };
}
