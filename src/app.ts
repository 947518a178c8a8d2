import { hkdfSync, randomBytes } from "node:crypto";
import { MemoryAuditLog } from "./audit/memory-audit-log.js";
import { RedisAuditLog } from "./audit/redis-audit-log.js";
import type { Config } from "./config.js";
import { TrustedProxies } from "./http/client-ip.js";
import { DevPage } from "./http/dev-page.js";
import { createHandler, createStreamHandler, type HandlerDeps } from "./http/handler.js";
import { MetricsListener } from "./http/metrics-listener.js";
import { type DrainResult, OnePortServer } from "./http/one-port.js";
import { metricsRoute } from "./http/ops-routes.js";
import type { TwilioWebhookSettings } from "./http/twilio-webhook-route.js";
import type { Logger } from "./log.js";
import { LoginService } from "./login/login-service.js";
import type { SmsSender } from "./login/ports.js";
import { SessionService } from "./login/session-service.js";
import { VerificationService } from "./login/verifications.js";
import { Metrics } from "./ops/metrics.js";
import { Readiness } from "./ops/readiness.js";
import { storeCheck } from "./ops/store-check.js";
import { MemoryOtpStore } from "./otp/memory-store.js";
import { failureLockKeys, RedisOtpStore } from "./otp/redis-store.js";
import { PhoneNormalizer } from "./phone/normalize.js";
import { RateLimitGuard } from "./ratelimit/guard.js";
import { type RedisClient, untilReady } from "./redis/client.js";
import { ReplicaAck } from "./redis/replica-ack.js";
import { BoundedSmsSender } from "./sms/bounded.js";
import { otpText, settingsOf } from "./sms/config.js";
import { createSmsSender, type SmsLog } from "./sms/factory.js";
import { msg91Provider } from "./sms/msg91/provider.js";
import { twilioProvider } from "./sms/twilio/provider.js";
import { MemorySeenCallbacks, RedisSeenCallbacks } from "./sms/twilio/seen-callbacks.js";
import { DeliveryStatusCounter } from "./sms/twilio/twilio-status-webhook.js";
import { AccessTokens } from "./tokens/access-tokens.js";
import { MemoryRefreshStore } from "./tokens/memory-refresh-store.js";
import { RedisRefreshStore } from "./tokens/redis-refresh-store.js";
import { MemoryUserStore } from "./users/memory-store.js";
import { RedisUserStore, USER_ID_BLOCK } from "./users/redis-store.js";

export interface App {
  readonly server: OnePortServer;
  readonly login: LoginService;
  /** Verification status, cancel and delivery receipts. */
  readonly verifications: VerificationService;
  /** The embedded audit ring, when there is no Redis (tests read it). */
  readonly auditRing: MemoryAuditLog | undefined;
  readonly accessTokens: AccessTokens;
  readonly redis: RedisClient | undefined;
  readonly readiness: Readiness;
  readonly metrics: Metrics | undefined;
  /**
   * `/metrics` on a listener of its own when METRICS_PORT is set (the API port then answers it 404); the
   * caller listens on it (main: METRICS_PORT on METRICS_HOST). Closed by `close` and `shutdown`.
   */
  readonly metricsListener: MetricsListener | undefined;
  /** Final delivery statuses Twilio reported to this app's `/webhooks/twilio/status`. */
  readonly deliveryStatus: DeliveryStatusCounter;
  /** Ends everything now (tests). */
  close(): Promise<void>;
  /**
   * Graceful stop: not ready (health NOT_SERVING), drain in-flight requests for up to `timeoutMs`, then close
   * Redis. What SIGTERM does.
   */
  shutdown(timeoutMs: number): Promise<DrainResult>;
}

export interface AppOverrides {
  /** Replaces the configured SMS provider (tests capture codes this way). */
  readonly sms?: SmsSender;
}

/** Wires the service from validated config: stores, providers, the login core and the one-port server. */
export async function buildApp(config: Config, log: Logger, overrides: AppOverrides = {}): Promise<App> {
  // Loaded only when used: ioredis is a third of a second of start-up the embedded mode does not need (no
  // module the embedded mode loads imports ioredis as a value: see src/redis/client.ts).
  const connect = config.redis ? await import("./redis/connect.js") : undefined;
  const redis = config.redis ? connect?.connectRedis(config.redis.target) : undefined;
  if (!redis) {
    log.warn(
      "DEVELOPMENT MODE: no REDIS_URL or REDIS_CLUSTER_NODES, using the embedded in-memory store; codes, users and sessions vanish on restart",
    );
  }
  redis?.on("error", (err: Error) => log.warn({ err: err.message }, "redis connection error"));
  if (redis && !(await untilReady(redis, 2_000))) {
    log.error("Redis is not reachable yet: answering Unavailable until it is (see /readyz)");
  }

  let codeSecret: Buffer;
  if (config.otp.secret) codeSecret = Buffer.from(config.otp.secret, "utf8");
  else {
    codeSecret = randomBytes(32);
    log.warn(
      "DEVELOPMENT MODE: no OTP_SECRET, generated one for this process; codes do not survive a restart",
    );
  }

  // One secret, two keys: HKDF under a label of their own keeps the successor key unrelated to the code key,
  // and spares production a second secret to provision. Every instance derives the same key from OTP_SECRET.
  const refreshSecret = Buffer.from(
    hkdfSync("sha256", codeSecret, "", "otp-auth refresh-token successor v1", 32),
  );

  const accessTokens = await AccessTokens.create({
    privateKey: config.jwt.privateKey,
    keyId: config.jwt.keyId,
    issuer: config.jwt.issuer,
    audience: config.jwt.audience,
    ttlSeconds: config.jwt.accessTtlSeconds,
    verificationKeys: config.jwt.previousKeys,
  });
  if (accessTokens.generated) {
    log.warn(
      "DEVELOPMENT MODE: no JWT_PRIVATE_KEY, generated an Ed25519 key for this process; tokens die with it",
    );
  }

  const smsLog = smsLogOf(log);
  // Around an override too: the cap is the process's, whoever sends.
  const sms = new BoundedSmsSender(overrides.sms ?? createSmsSender(config.sms, smsLog), smsLog, {
    maxInFlight: config.sms.maxInFlight,
  });
  // Only the development provider alone: with a real one (even as a fallback) a send costs money, and a
  // sidecar proxy on localhost would otherwise make every caller exempt.
  const devSms = sms.name === "development";
  if (devSms) {
    log.warn(
      "DEVELOPMENT MODE: SMS_PROVIDER=development prints codes to the console; callers on this machine (127.0.0.0/8, ::1) skip the per-IP and per-phone limits and the cooldown (the attempt cap and phone lock stay on)",
    );
  }

  const metrics = config.metricsEnabled ? new Metrics() : undefined;
  metrics?.watchSmsInFlight(sms);
  const metricsEndpoint = metrics ? metricsRoute(metrics, config.metricsToken) : undefined;
  const metricsListener =
    metricsEndpoint && config.metricsPort !== undefined ? new MetricsListener(metricsEndpoint) : undefined;
  const deliveryStatus = new DeliveryStatusCounter();
  const readiness = new Readiness().add(storeCheck(redis));

  const codes = redis ? new RedisOtpStore(redis) : new MemoryOtpStore();
  // New identities wait for replicas (REDIS_MIN_REPLICAS_ACK): a failover must not forget a user.
  const ackSettings = config.redis && {
    minReplicas: config.redis.minReplicasAck,
    timeoutMs: config.redis.replicaAckTimeoutMs,
  };
  const replicaAck =
    redis && ackSettings && ReplicaAck.needed(redis, ackSettings)
      ? new ReplicaAck(redis, ackSettings)
      : undefined;
  // One store for tokens and their sessions: a login and a refresh write both in one step.
  const refreshTokens = redis ? new RedisRefreshStore(redis) : new MemoryRefreshStore();
  const auditRing = redis ? undefined : new MemoryAuditLog(config.audit.memoryEvents);
  const audit = redis
    ? new RedisAuditLog(redis, config.audit.maxLen, config.audit.retentionMs, log)
    : (auditRing as MemoryAuditLog);
  if (config.otp.testNumbers.size > 0) {
    log.warn(
      { count: config.otp.testNumbers.size },
      "TEST_PHONE_NUMBERS: test numbers configured; they get fixed codes and no SMS",
    );
  }
  const phones = new PhoneNormalizer(config.defaultCountry);
  const login = new LoginService({
    settings: {
      codeLength: config.otp.length,
      codeTtlSeconds: config.otp.ttlSeconds,
      maxAttempts: config.otp.maxAttempts,
      failureLock: {
        maxFailures: config.limits.phoneFailures,
        lockSeconds: config.limits.phoneLockSeconds,
      },
      codeSecret,
      previousCodeSecret:
        config.otp.previousSecret === undefined ? undefined : Buffer.from(config.otp.previousSecret, "utf8"),
      refreshTtlSeconds: config.jwt.refreshTtlSeconds,
      refreshSecret,
      refreshReuseGraceSeconds: config.jwt.refreshReuseGraceSeconds,
      verificationRetentionSeconds: config.otp.retentionSeconds,
      testNumbers: config.otp.testNumbers,
      rerouteProvider: config.sms.rerouteUndelivered ? config.sms.fallback : undefined,
    },
    phones,
    codes,
    verifications: codes,
    audit,
    users: redis ? new RedisUserStore(redis, USER_ID_BLOCK, replicaAck) : new MemoryUserStore(),
    refreshTokens,
    accessTokens,
    sms,
    guard: new RateLimitGuard({
      limits: config.limits,
      redis,
      lock: { keys: failureLockKeys, lockedFor: (phone, client) => codes.lockedFor(phone, client) },
      log,
      exemptLoopback: devSms,
    }),
    message: otpText(config.sms, config.otp.ttlSeconds),
    log,
    events: metrics,
  });
  const verifications = new VerificationService({
    store: codes,
    maxAttempts: config.otp.maxAttempts,
    log,
    audit,
    events: login.events,
    regionOf: (e164) => {
      try {
        return phones.parse(e164).region ?? "";
      } catch {
        return "";
      }
    },
    reroute: config.sms.rerouteUndelivered ? (v) => login.reroute(v) : undefined,
  });
  const onReceipt =
    (provider: string) => (r: { messageId: string; status: string; errorCode: string }, requestId?: string) =>
      verifications.receipt({ provider, ...r }, requestId);
  const twilioWebhook = twilioWebhookOf(config, {
    counter: deliveryStatus,
    seen: redis ? new RedisSeenCallbacks(redis) : new MemorySeenCallbacks(),
    onReceipt: onReceipt("twilio"),
  });
  if (twilioWebhook) metrics?.watchDeliveryStatus(deliveryStatus);
  const dlrSecret = settingsOf(config.sms, msg91Provider)?.dlrSecret;

  const handlerDeps: HandlerDeps = {
    login,
    sessions: new SessionService({ sessions: refreshTokens, accessTokens, log }),
    accessTokens,
    log,
    trustedProxies: new TrustedProxies(config.trustedProxies),
    readiness,
    metrics,
    metricsRoute: metricsListener ? undefined : metricsEndpoint,
    cors: config.cors,
    devPage: config.production ? undefined : DevPage.locate(),
    twilioWebhook,
    grpcFastPath: config.grpcFastPath,
    verifications,
    audit: {
      feed: redis ? (audit as RedisAuditLog) : (auditRing as MemoryAuditLog),
      token: config.audit.token,
      maxWatchers: config.audit.maxWatchers,
    },
    msg91Dlr: dlrSecret ? { secret: dlrSecret, onReceipt: onReceipt("msg91") } : undefined,
  };
  const server = new OnePortServer(
    createHandler(handlerDeps),
    config.server,
    log,
    createStreamHandler(handlerDeps),
  );
  const closeRedis = async () => {
    await replicaAck?.close();
    if (!redis) return;
    // QUIT waits for replies to commands already sent; a Redis that is gone must not hold the exit.
    const quit = redis.quit().then(
      () => true,
      () => false,
    );
    const timeout = new Promise<false>((r) => setTimeout(r, 2_000, false).unref());
    if (!(await Promise.race([quit, timeout]))) redis.disconnect();
  };
  return {
    server,
    login,
    verifications,
    auditRing,
    accessTokens,
    redis,
    readiness,
    metrics,
    metricsListener,
    deliveryStatus,
    async close() {
      readiness.beginShutdown();
      await Promise.all([server.close(), metricsListener?.close()]);
      await login.settled();
      await closeRedis();
    },
    async shutdown(timeoutMs) {
      readiness.beginShutdown();
      // Scrapes go on while requests drain, so the drain itself shows up in the metrics.
      const drained = await server.shutdown(timeoutMs);
      await metricsListener?.close();
      await login.settled();
      await closeRedis();
      return drained;
    },
  };
}

function twilioWebhookOf(
  config: Config,
  counting: Pick<TwilioWebhookSettings, "counter" | "seen" | "onReceipt">,
): TwilioWebhookSettings | undefined {
  const t = settingsOf(config.sms, twilioProvider);
  return t?.statusCallbackUrl
    ? { authToken: t.authToken, publicUrl: t.statusCallbackUrl, ...counting }
    : undefined;
}

function smsLogOf(log: Logger): SmsLog {
  // The SMS layer logs (message, fields); pino takes (fields, message).
  return {
    info: (msg, extra) => log.info(extra ?? {}, msg),
    warn: (msg, extra) => log.warn(extra ?? {}, msg),
    error: (msg, extra) => log.error(extra ?? {}, msg),
  };
}
