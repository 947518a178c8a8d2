import { type AuditConfig, readAuditConfig } from "./audit/config.js";
import { EnvReader } from "./env-reader.js";
import { readTrustedProxies } from "./http/client-ip-config.js";
import type { CorsOptions } from "./http/cors.js";
import { readCorsConfig } from "./http/cors-config.js";
import { readGrpcFastPath } from "./http/grpc-fast-path-config.js";
import { readServerLimits } from "./http/limits-config.js";
import type { ServerLimits } from "./http/one-port.js";
import { type OpsConfig, readOpsConfig } from "./ops/config.js";
import { type OtpConfig, readOtpConfig } from "./otp/config.js";
import { readDefaultCountry } from "./phone/config.js";
import { type LimitSettings, readLimits } from "./ratelimit/config.js";
import { type RedisConfig, readRedisConfig } from "./redis/config.js";
import { readSmsConfig, type SmsConfig } from "./sms/config.js";
import { SMS_PROVIDERS } from "./sms/registry.js";
import { readTokenConfig, type TokenConfig } from "./tokens/config.js";

/**
 * Everything the service reads from the environment, validated once at start-up. Each module reads its own
 * variables (`src/<module>/config.ts`); every problem names the variable, and all problems are reported
 * together so a deploy is fixed in one round.
 */
export interface Config extends OpsConfig {
  readonly production: boolean;
  readonly host: string;
  readonly port: number;
  /** METRICS_HOST, or `host` when unset; used only with METRICS_PORT. */
  readonly metricsHost: string;
  /** One Redis or a cluster, and how durable new users must be; absent in development (embedded store). */
  readonly redis: RedisConfig | undefined;
  readonly defaultCountry: string;
  readonly otp: OtpConfig;
  readonly jwt: TokenConfig;
  /** Providers, failover, timeouts and the message text; see src/sms/config.ts. */
  readonly sms: SmsConfig;
  readonly limits: LimitSettings;
  /** IPs and CIDRs of proxies whose X-Forwarded-For is believed; empty: the socket peer is the client. */
  readonly trustedProxies: readonly string[];
  /** Connection cap and HTTP/1 and HTTP/2 bounds; see src/http/limits-config.ts. */
  readonly server: ServerLimits;
  /** Browser origins allowed to call cross-origin (CORS); see src/http/cors.ts. */
  readonly cors: CorsOptions;
  /** Unary gRPC calls of AuthService skip connect-node's pipeline; see src/http/grpc-fast-path.ts. */
  readonly grpcFastPath: boolean;
  /** The audit stream and who may watch it; see src/audit/config.ts. */
  readonly audit: AuditConfig;
}

export class ConfigError extends Error {
  override readonly name = "ConfigError";
  constructor(readonly problems: readonly string[]) {
    super(`invalid configuration:\n${problems.map((p) => `  - ${p}`).join("\n")}`);
  }
}

export function loadConfig(env: Readonly<Record<string, string | undefined>> = process.env): Config {
  const r = new EnvReader(env);
  const config = readConfig(r);
  if (r.problems.length > 0) throw new ConfigError(r.problems);
  return config;
}

/**
 * Every variable the service reads, whichever SMS providers are in use (`*_FILE` variants included), so deploy
 * files and `.env.example` can be checked against the readers instead of a hand-kept list.
 */
export function knownVariables(): string[] {
  const names = new Set<string>();
  for (const p of SMS_PROVIDERS) {
    const r = new EnvReader({ NODE_ENV: "production", SMS_PROVIDER: p.name });
    readConfig(r);
    for (const name of r.names) names.add(name);
  }
  return [...names].sort();
}

function readConfig(r: EnvReader): Config {
  // The listener is main's alone, so its two variables are read here.
  const host = r.string("HOST", "0.0.0.0");
  const port = r.int("PORT", 8000, 0, 65535);
  const ops = readOpsConfig(r);
  if (ops.metricsPort !== undefined && ops.metricsPort !== 0 && ops.metricsPort === port) {
    r.problems.push(`METRICS_PORT must differ from PORT (both ${port})`);
  }
  const config: Config = {
    production: r.production,
    host,
    port,
    redis: readRedisConfig(r),
    defaultCountry: readDefaultCountry(r),
    otp: readOtpConfig(r),
    jwt: readTokenConfig(r),
    sms: readSmsConfig(r),
    limits: readLimits(r),
    trustedProxies: readTrustedProxies(r),
    ...ops,
    metricsHost: ops.metricsHost ?? host,
    cors: readCorsConfig(r),
    server: readServerLimits(r),
    grpcFastPath: readGrpcFastPath(r),
    audit: readAuditConfig(r),
  };
  const shards = config.limits.smsBudgetShards;
  if (shards !== undefined && shards !== 1 && config.redis?.target.kind !== "cluster") {
    // One Redis runs the send decision as one script over one counter each: shards would change nothing.
    r.problems.push(`SMS_BUDGET_SHARDS=${shards} applies to a Redis Cluster only (REDIS_CLUSTER_NODES)`);
  }
  return config;
}
