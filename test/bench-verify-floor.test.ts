import { create } from "@bufbuild/protobuf";
import { decodeJwt, decodeProtectedHeader } from "jose";
import { afterAll, beforeAll, expect, it } from "vitest";
import { startVerifyFloor } from "../bench/server/verify-floor.js";
import { AuthService, VerifyOtpRequestSchema } from "../gen/auth/v1/auth_pb.js";
import { isCanonicalEdDsaJws } from "../packages/client/src/token-shape.js";
import { parseRefreshToken } from "../src/login/refresh-token.js";
import { grpcJsClient } from "./support/grpc-client.js";
import { RecordingRedis } from "./support/recording-redis.js";
import { describeWithRedis, freePort } from "./support/redis.js";

// The bench's VerifyOtp floor is the bar the service's gRPC VerifyOtp is read against, so its work is pinned:
// dropping a command, a round trip or the signature would raise the bar's height and flatter the service.
describeWithRedis("bench VerifyOtp floor", (redis) => {
  let client: RecordingRedis;
  let floor: { close(): Promise<void> };
  let g: ReturnType<typeof grpcJsClient>;

  beforeAll(async () => {
    client = new RecordingRedis(redis.url, { enableAutoPipelining: false });
    await client.ping();
    const port = await freePort();
    floor = await startVerifyFloor(client, port, "127.0.0.1");
    g = grpcJsClient(AuthService, `127.0.0.1:${port}`);
  });
  afterAll(async () => {
    g?.close();
    // Closing the floor quits its client.
    await floor?.close();
  });

  it("takes the code, then writes the user and the token together: 3 commands in 2 round trips", async () => {
    client.events.length = 0;
    const phone = "+919876543210";
    const res = await g.call(
      AuthService.method.verifyOtp,
      create(VerifyOtpRequestSchema, { phone, otp: "000000" }),
    );
    expect(client.events).toEqual([
      "send getdel",
      "reply getdel",
      "send set",
      "send set",
      "reply set",
      "reply set",
    ]);
    expect(res).toMatchObject({
      tokenType: "bearer",
      expiresIn: 900,
      user: { id: 1n, phone, name: "User 3210", role: "consumer", isPhoneVerified: true },
    });

    expect(isCanonicalEdDsaJws(res.accessToken)).toBe(true);
    expect(decodeProtectedHeader(res.accessToken)).toMatchObject({ alg: "EdDSA", typ: "JWT" });
    const ref = parseRefreshToken(res.refreshToken);
    expect(ref).toMatchObject({ userId: 1 });
    expect(decodeJwt(res.accessToken)).toMatchObject({ sub: "1", phone, sid: ref?.family });

    // Every key it writes expires, so a bench Redis holds nothing the soak's TTL check would flag.
    const keys = (await redis.keys("floor:*")).sort();
    expect(keys).toEqual([`floor:rt:${ref?.hash}`, `floor:user:${phone}`]);
    for (const key of keys) {
      const ttl = await client.ttl(key);
      expect(ttl).toBeGreaterThan(0);
      expect(ttl).toBeLessThanOrEqual(600);
    }
  });
});
