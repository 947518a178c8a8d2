import { createHmac, randomInt } from "node:crypto";
import { createServer, type IncomingMessage, type ServerResponse } from "node:http";
import type { Redis } from "ioredis";
import { EnvReader } from "../../src/env-reader.js";
import { OTP_SENT_MESSAGE } from "../../src/login/model.js";
import { readOtpConfig } from "../../src/otp/config.js";
import { readLimits } from "../../src/ratelimit/config.js";
import { type PlainServer, plainServer } from "./plain-server.js";

/**
 * Counts each limit's key (INCR, an expiry on the first hit) and stops at the first one over its points with
 * the milliseconds it has left; with every limit passed, stores the code's digest. One script call: one
 * command in one round trip, as the service's send decision and its put are.
 */
const SEND = `
local n = tonumber(ARGV[1])
for i = 1, n do
  local count = redis.call('INCR', KEYS[i])
  if count == 1 then redis.call('PEXPIRE', KEYS[i], ARGV[2 * i + 1]) end
  if count > tonumber(ARGV[2 * i]) then return math.max(1, redis.call('PTTL', KEYS[i])) end
end
redis.call('SET', KEYS[n + 1], ARGV[2 * n + 2], 'EX', ARGV[2 * n + 3])
return 0
`;

interface SendFloorCommands {
  floorSend(numberOfKeys: number, ...keysAndArgs: (string | number)[]): Promise<number>;
}

/**
 * A floor for SendOtp over `/api/v1`: the work issue 15's express equivalent does, with none of express and
 * in one Redis round trip, and nothing else. Per request: the body read and parsed, an E.164 regex, the six
 * send limits the service applies (its config readers, its points and windows) counted in one script call
 * that also stores the code's HMAC digest under the code's TTL, a `randomInt` code, a JSON answer (429 with
 * Retry-After on a refusal). No libphonenumber, no verification record, no failure lock, no SMS hand-off, no
 * audit event, no log line, no metrics, no request id. The service's `/api/v1` SendOtp cannot reach more of
 * the `node:http` + 1 Redis ceiling than this floor does.
 * `redis` is the service's client (`OneWritePerTurnRedis`, no auto-pipelining); `close` quits it.
 */
export function startSendFloor(redis: Redis, env: Readonly<Record<string, string | undefined>>): PlainServer {
  const r = new EnvReader(env);
  const limits = readLimits(r);
  const otp = readOtpConfig(r);
  if (r.problems.length > 0) throw new Error(`send floor: ${r.problems.join("; ")}`);
  const secret = otp.secret;
  if (!secret) throw new Error("send floor: OTP_SECRET is required");
  redis.defineCommand("floorSend", { lua: SEND });
  const run = redis as Redis & SendFloorCommands;

  const HOUR_MS = 3_600_000;
  // [name, points, window ms, the key's part taken from the request]
  const windows: [string, number, number, (phone: string, ip: string) => string][] = [
    ["send-ip", limits.ipSend.points, limits.ipSend.durationSeconds * 1000, (_, ip) => ip],
    ["send-cooldown", 1, limits.phoneCooldownSeconds * 1000, (phone) => phone],
    ["send-phone", limits.phoneSend.points, limits.phoneSend.durationSeconds * 1000, (phone) => phone],
    ["sms-prefix", limits.smsPerPrefixPerHour, HOUR_MS, (phone) => phone.slice(0, -4)],
    ["sms-country", limits.smsPerCountryPerHour, HOUR_MS, (phone) => phone.slice(0, 3)],
    ["sms-global", limits.smsPerHour, HOUR_MS, () => "all"],
  ];
  const active = windows.filter(([, points, ms]) => points > 0 && ms > 0);
  const E164 = /^\+[1-9]\d{6,14}$/;

  const json = (res: ServerResponse, status: number, body: unknown, headers: Record<string, string> = {}) => {
    const payload = JSON.stringify(body);
    res.writeHead(status, {
      "content-type": "application/json",
      "content-length": Buffer.byteLength(payload),
      ...headers,
    });
    res.end(payload);
  };
  const handle = (req: IncomingMessage, res: ServerResponse, body: Buffer) => {
    let phone: unknown;
    try {
      phone = (JSON.parse(body.toString("utf8")) as { phone?: unknown }).phone;
    } catch {
      phone = undefined;
    }
    if (typeof phone !== "string" || !E164.test(phone)) {
      json(res, 400, { detail: "phone must be an E.164 number" });
      return;
    }
    const forwarded = req.headers["x-forwarded-for"];
    const ip = (typeof forwarded === "string" ? forwarded : req.socket.remoteAddress) ?? "";
    const code = String(randomInt(1_000_000)).padStart(6, "0");
    const digest = createHmac("sha256", secret).update(`${phone}\n${code}`).digest("base64url");
    const keys = active.map(([name, , , part]) => `floor:rl:${name}:${part(phone, ip)}`);
    const args: (string | number)[] = [active.length];
    for (const [, points, ms] of active) args.push(points, ms);
    args.push(digest, otp.ttlSeconds);
    run.floorSend(keys.length + 1, ...keys, `floor:otp:${phone}`, ...args).then(
      (waitMs) => {
        if (waitMs > 0) {
          json(
            res,
            429,
            { detail: "Too many requests" },
            { "retry-after": String(Math.ceil(waitMs / 1000)) },
          );
          return;
        }
        json(res, 200, { message: OTP_SENT_MESSAGE, phone, expires_in_seconds: otp.ttlSeconds });
      },
      () => json(res, 503, { detail: "redis" }),
    );
  };
  const server = createServer((req, res) => {
    const chunks: Buffer[] = [];
    req.on("data", (c: Buffer) => chunks.push(c));
    req.on("end", () => handle(req, res, Buffer.concat(chunks)));
  });
  return plainServer(server, redis);
}
