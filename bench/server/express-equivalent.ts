import { createHmac, randomInt } from "node:crypto";
import { createServer } from "node:http";
import express, { type NextFunction, type Request, type Response } from "express";
import { Redis } from "ioredis";
import { getCountries, getCountryCallingCode } from "libphonenumber-js/min";
import { RateLimiterRedis, RateLimiterRes } from "rate-limiter-flexible";
import { EnvReader } from "../../src/env-reader.js";
import { OTP_SENT_MESSAGE } from "../../src/login/model.js";
import { newVerificationId } from "../../src/login/verifications.js";
import { readOtpConfig } from "../../src/otp/config.js";
import { RedisOtpStore } from "../../src/otp/redis-store.js";
import { readLimits } from "../../src/ratelimit/config.js";
import { type PlainServer, plainServer } from "./plain-server.js";

/**
 * What a team would write instead of the service, for issue 15's "/api/v1 SendOtp ≥ 1.5× express": express 5,
 * `express.json()`, an E.164 regex, the send limits the service applies as six rate-limiter-flexible
 * `RateLimiterRedis` consumes in one `Promise.all` (429 on any refusal), a 6-digit `randomInt` code stored as
 * the service stores it (its HMAC, through the service's own `put` script), and the service's answer.
 *
 * Same numbers as the service: the limits and code settings are read by the service's own config readers from
 * the same environment, and the counters use the service's keys (`rl:<name>:<key>`). Not done, where the
 * service does more: no phone parsing beyond the regex (number types, blocked ranges, allow-list), no failure
 * lock, no send record or audit entry after the answer, no log line per send, no SMS sink call, and an ioredis
 * client with its defaults (no auto-pipelining).
 */
export function expressEquivalentServer(env: Readonly<Record<string, string | undefined>>): PlainServer {
  const r = new EnvReader(env);
  const limits = readLimits(r);
  const otp = readOtpConfig(r);
  if (r.problems.length > 0) throw new Error(`express-equivalent: ${r.problems.join("; ")}`);
  const secret = otp.secret;
  if (!secret) throw new Error("express-equivalent: OTP_SECRET is required");
  const redis = new Redis(env.REDIS_URL ?? "redis://127.0.0.1:6379");
  const store = new RedisOtpStore(redis);

  const limiter = (name: string, points: number, duration: number) =>
    points > 0
      ? new RateLimiterRedis({ storeClient: redis, keyPrefix: `rl:${name}`, points, duration })
      : undefined;
  const HOUR = 3600;
  const ip = limiter("send-ip", limits.ipSend.points, limits.ipSend.durationSeconds);
  const cooldown = limiter(
    "send-cooldown",
    limits.phoneCooldownSeconds > 0 ? 1 : 0,
    limits.phoneCooldownSeconds,
  );
  const perPhone = limiter("send-phone", limits.phoneSend.points, limits.phoneSend.durationSeconds);
  const prefix = limiter("sms-prefix", limits.smsPerPrefixPerHour, HOUR);
  const country = limiter("sms-country", limits.smsPerCountryPerHour, HOUR);
  const global = limiter("sms-global", limits.smsPerHour, HOUR);

  // The country calling code is a prefix code: the one calling code the number starts with.
  const callingCodes = new Set(getCountries().map((c) => getCountryCallingCode(c) as string));
  const callingCodeOf = (e164: string) => {
    for (let n = 1; n <= 3; n++) {
      const cc = e164.slice(1, 1 + n);
      if (callingCodes.has(cc)) return cc;
    }
    return e164.slice(1, 4);
  };
  const E164 = /^\+[1-9]\d{6,14}$/;

  const app = express();
  app.disable("x-powered-by");
  app.set("trust proxy", "127.0.0.1");
  app.use(express.json());

  app.post("/api/v1/auth/send-otp", async (req: Request, res: Response, next: NextFunction) => {
    try {
      const phone = (req.body as { phone?: unknown } | undefined)?.phone;
      if (typeof phone !== "string" || !E164.test(phone)) {
        res.status(400).json({ detail: "phone must be an E.164 number" });
        return;
      }
      const cc = callingCodeOf(phone);
      const consumes = [
        ip?.consume(req.ip ?? ""),
        cooldown?.consume(phone),
        perPhone?.consume(phone),
        prefix?.consume(phone.slice(0, -4)),
        country?.consume(cc),
        global?.consume("all"),
      ];
      try {
        await Promise.all(consumes);
      } catch (err) {
        if (!(err instanceof RateLimiterRes)) throw err;
        res.set("Retry-After", String(Math.ceil(err.msBeforeNext / 1000)));
        res.status(429).json({ detail: "Too many requests" });
        return;
      }
      const code = String(randomInt(1_000_000)).padStart(6, "0");
      const digest = createHmac("sha256", secret).update(`${phone}\n${code}`).digest("base64url");
      const national = phone.slice(1 + cc.length);
      const filed = await store.put(phone, digest, otp.ttlSeconds, {
        verificationId: newVerificationId(),
        maxAttempts: otp.maxAttempts,
        retentionSeconds: otp.retentionSeconds,
        maskedPhone: `+${cc}${"*".repeat(Math.max(0, national.length - 4))}${national.slice(-4)}`,
      });
      res.json({
        message: OTP_SENT_MESSAGE,
        phone,
        expires_in_seconds: otp.ttlSeconds,
        verification_id: filed.verificationId,
      });
    } catch (err) {
      next(err);
    }
  });

  app.use((err: unknown, _req: Request, res: Response, _next: NextFunction) => {
    const status = (err as { status?: unknown }).status;
    res.status(typeof status === "number" && status < 500 ? status : 500).json({ detail: "error" });
  });

  const server = createServer(app);
  return plainServer(server, redis);
}
