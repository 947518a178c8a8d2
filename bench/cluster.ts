// The cluster scenario: the login flow (SendOtp, VerifyOtp, RefreshToken over /api/v1) against a Redis Cluster
// of 3 masters (+3 replicas) on loopback, and the same against one Redis, for comparison. Reports req/s, Redis
// commands per request on each master (INFO commandstats deltas; Redis 7 counts what scripts run) and the
// busiest master's share. In process, through the test harness: a structure check, not the full bench.
//
//   npx tsx bench/cluster.ts          (BENCH_DURATION_MS, BENCH_CONCURRENCY)
import type { Redis } from "ioredis";
import { type RunningApp, startApp } from "../test/support/app.js";
import { uniquePhone } from "../test/support/capture-sms.js";
import { startTestRedis } from "../test/support/redis.js";
import { startTestRedisCluster } from "../test/support/redis-cluster.js";

const DURATION_MS = Number(process.env.BENCH_DURATION_MS ?? 5_000);
const CONCURRENCY = Number(process.env.BENCH_CONCURRENCY ?? 32);
const env = {
  OTP_SECRET: "bench-cluster-secret-0123456789abcdef0123",
  TRUSTED_PROXIES: "127.0.0.1",
  // Every limit of Abuse protection on, per-client ones varied through X-Forwarded-For; hourly caps raised so
  // their counters are still counted.
  RATE_LIMIT_IP_POINTS: "5",
  RATE_LIMIT_PHONE_SEND_POINTS: "5",
  RATE_LIMIT_PHONE_COOLDOWN_SECONDS: "30",
  SMS_MAX_PER_PREFIX_PER_HOUR: "100000000",
  SMS_MAX_PER_COUNTRY_PER_HOUR: "100000000",
  SMS_MAX_PER_HOUR: "100000000",
  // Six Redis nodes, the service and the load share two cores here: a replica can take longer than the 500 ms
  // default to acknowledge a new user's write, which answers 503 by design. Replicas on hosts of their own answer
  // in milliseconds; the bench measures throughput and commands, not that bound (the test suite does).
  REDIS_REPLICA_ACK_TIMEOUT_MS: "5000",
};

let ip = 0;
async function post(app: RunningApp, path: string, body: unknown): Promise<Record<string, unknown>> {
  ip += 1;
  const res = await fetch(`${app.baseUrl}/api/v1/auth/${path}`, {
    method: "POST",
    headers: {
      "content-type": "application/json",
      "x-forwarded-for": `10.${(ip >> 16) & 255}.${(ip >> 8) & 255}.${ip & 255}`,
    },
    body: JSON.stringify(body),
  });
  const json = (await res.json()) as Record<string, unknown>;
  if (res.status !== 200) throw new Error(`${path}: ${res.status} ${JSON.stringify(json)}`);
  return json;
}

/** One login: send, verify (a new user), refresh. Three requests. */
async function login(app: RunningApp): Promise<void> {
  const phone = uniquePhone();
  await post(app, "send-otp", { phone });
  const tokens = await post(app, "verify-otp", { phone, otp: app.sms.lastCode(phone) });
  await post(app, "refresh", { refresh_token: tokens.refresh_token });
}

const IGNORED = /^cmdstat_(info|cluster|ping|scan|readonly|command|client|hello|select|config|wait)$/;

async function calls(node: Redis): Promise<number> {
  const stats = await node.info("commandstats");
  let total = 0;
  for (const line of stats.split("\n")) {
    const m = /^(cmdstat_[^:]+):calls=(\d+)/.exec(line);
    if (m?.[1] && !IGNORED.test(m[1])) total += Number(m[2]);
  }
  return total;
}

async function measure(app: RunningApp, masters: Redis[]) {
  for (let i = 0; i < 50; i++) await login(app);
  const before = await Promise.all(masters.map(calls));
  let requests = 0;
  const deadline = Date.now() + DURATION_MS;
  const started = Date.now();
  await Promise.all(
    Array.from({ length: CONCURRENCY }, async () => {
      while (Date.now() < deadline) {
        await login(app);
        requests += 3;
      }
    }),
  );
  const seconds = (Date.now() - started) / 1000;
  const after = await Promise.all(masters.map(calls));
  const perMaster = after.map((n, i) => (n - (before[i] ?? 0)) / requests);
  const total = perMaster.reduce((a, b) => a + b, 0);
  return {
    reqPerSecond: Math.round(requests / seconds),
    commandsPerRequest: Number(total.toFixed(2)),
    perMaster: perMaster.map((n) => Number(n.toFixed(2))),
    busiestShare: Number((Math.max(...perMaster) / total).toFixed(3)),
  };
}

async function main() {
  const single = await startTestRedis({ own: true });
  const singleApp = await startApp({ ...env, REDIS_URL: single.url });
  const one = await measure(singleApp, [single.client()]);
  await singleApp.close();
  await single.close();

  const cluster = await startTestRedisCluster({ nodeTimeoutMs: 5_000 });
  const clusterApp = await startApp({ ...env, REDIS_CLUSTER_NODES: cluster.nodes });
  const masters = (await cluster.topology())
    .filter((n) => n.role === "master")
    .map((n) => cluster.node(n.port));
  const three = await measure(clusterApp, masters);
  await clusterApp.close();
  await cluster.close();

  console.log(
    JSON.stringify(
      { durationMs: DURATION_MS, concurrency: CONCURRENCY, single: one, cluster: three },
      null,
      2,
    ),
  );
}

await main();
