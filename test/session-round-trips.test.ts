import { afterAll, beforeAll, expect, it } from "vitest";
import { instrumentRedisCommands, takeRoundTripStats, traceRequests } from "../bench/server/round-trips.js";
import { type RunningApp, startApp } from "./support/app.js";
import { uniquePhone } from "./support/capture-sms.js";
import { describeWithRedis } from "./support/redis.js";

// Sessions ride in the token scripts: a login and a refresh cost no extra sequential round trip. Measured with
// the bench's tracer, which patches ioredis for the process, hence a file of its own.
describeWithRedis("round trips with sessions (the bench's tracer)", (redis) => {
  let s: RunningApp;
  beforeAll(async () => {
    instrumentRedisCommands();
    s = await startApp({ REDIS_URL: redis.url });
    traceRequests(s.app.server.h1);
  });
  afterAll(() => s?.close());

  const post = async (path: string, body: unknown) => {
    const res = await fetch(`${s.baseUrl}/api/v1/auth/${path}`, {
      method: "POST",
      headers: { "content-type": "application/json", "user-agent": "round-trip probe" },
      body: JSON.stringify(body),
    });
    expect(res.status).toBe(200);
    return (await res.json()) as { refresh_token: string; access_token: string };
  };

  it("VerifyOtp at most 3, RefreshToken 1", async () => {
    // A first login takes the process's first block of user ids: not what is measured.
    const warm = uniquePhone();
    await post("send-otp", { phone: warm });
    await post("verify-otp", { phone: warm, otp: s.sms.lastCode(warm) });
    const depths = { verify: [] as number[], refresh: [] as number[] };
    for (let i = 0; i < 5; i++) {
      const phone = uniquePhone();
      await post("send-otp", { phone });
      takeRoundTripStats();
      const login = await post("verify-otp", { phone, otp: s.sms.lastCode(phone) });
      depths.verify.push(takeRoundTripStats().maxDepth);
      await post("refresh", { refresh_token: login.refresh_token });
      depths.refresh.push(takeRoundTripStats().maxDepth);
    }
    expect(Math.max(...depths.verify)).toBeLessThanOrEqual(3);
    expect(depths.refresh).toEqual([1, 1, 1, 1, 1]);
  });
});
