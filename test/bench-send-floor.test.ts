import { afterAll, beforeAll, expect, it } from "vitest";
import { startSendFloor } from "../bench/server/send-floor.js";
import { RecordingRedis } from "./support/recording-redis.js";
import { describeWithRedis } from "./support/redis.js";

// The bench's SendOtp floor is the bar the service's /api/v1 SendOtp is read against, so its work is pinned:
// fewer limits, or the code left unstored, would raise the bar and flatter the service.
describeWithRedis("bench SendOtp floor", (redis) => {
  let client: RecordingRedis;
  let floor: ReturnType<typeof startSendFloor>;
  let base: string;
  const env = {
    OTP_SECRET: "a".repeat(32),
    RATE_LIMIT_IP_POINTS: "2",
    TRUSTED_PROXIES: "127.0.0.1",
  };
  const send = (phone: unknown, ip: string) =>
    fetch(`${base}/api/v1/auth/send-otp`, {
      method: "POST",
      headers: { "content-type": "application/json", "x-forwarded-for": ip },
      body: JSON.stringify({ phone }),
    });

  beforeAll(async () => {
    client = new RecordingRedis(redis.url, { enableAutoPipelining: false });
    await client.ping();
    floor = startSendFloor(client, env);
    base = `http://127.0.0.1:${await floor.listen(0, "127.0.0.1")}`;
  });
  // Closing the floor quits its client.
  afterAll(() => floor?.close());

  it("counts six limits and stores the code in one script call", async () => {
    client.events.length = 0;
    const phone = "+919876543210";
    const res = await send(phone, "10.0.0.1");
    expect(res.status).toBe(200);
    expect(await res.json()).toEqual({ message: "OTP sent successfully", phone, expires_in_seconds: 600 });
    expect(client.sent).toEqual(["evalsha"]);
    const keys = (await redis.keys("floor:*")).sort();
    expect(keys).toEqual(
      [
        "floor:otp:+919876543210",
        "floor:rl:send-cooldown:+919876543210",
        "floor:rl:send-ip:10.0.0.1",
        "floor:rl:send-phone:+919876543210",
        "floor:rl:sms-country:+91",
        "floor:rl:sms-global:all",
        "floor:rl:sms-prefix:+91987654",
      ].sort(),
    );
    for (const key of keys) expect(await client.pttl(key)).toBeGreaterThan(0);
    expect(await client.get("floor:otp:+919876543210")).toMatch(/^[A-Za-z0-9_-]{43}$/);
  });

  it("refuses past a limit with 429 and Retry-After, and a bad phone with 400", async () => {
    // The same phone again: its 30 s cooldown.
    const again = await send("+919876543210", "10.0.0.2");
    expect(again.status).toBe(429);
    expect(Number(again.headers.get("retry-after"))).toBeGreaterThan(0);
    // A third request from one address: RATE_LIMIT_IP_POINTS=2.
    expect((await send("+919876543211", "10.0.0.3")).status).toBe(200);
    expect((await send("+919876543212", "10.0.0.3")).status).toBe(200);
    expect((await send("+919876543213", "10.0.0.3")).status).toBe(429);
    expect((await send("98765", "10.0.0.4")).status).toBe(400);
  });
});
