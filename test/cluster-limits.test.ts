import type { Cluster } from "ioredis";
import { afterAll, beforeAll, expect, it } from "vitest";
import { type RunningApp, startApp } from "./support/app.js";
import { uniquePhone } from "./support/capture-sms.js";
import { describeWithRedisCluster } from "./support/redis-cluster.js";
import { until } from "./support/wait.js";

// The send decision split per slot: refusals and failures give back what other shards counted, and the hot
// counters, spread over shards, still never admit more than their points.
describeWithRedisCluster(
  "send limits on a cluster",
  (cluster) => {
    let a: RunningApp;
    let b: RunningApp;
    let db: Cluster;
    const env = {
      SMS_MAX_PER_HOUR: "1000000",
      SMS_MAX_PER_COUNTRY_PER_HOUR: "1000000",
      SMS_MAX_PER_PREFIX_PER_HOUR: "1000000",
      RATE_LIMIT_PHONE_COOLDOWN_SECONDS: "3600",
      TRUSTED_PROXIES: "127.0.0.1",
    };
    beforeAll(async () => {
      db = cluster.client();
      [a, b] = await Promise.all([
        startApp({ REDIS_CLUSTER_NODES: cluster.nodes, ...env }),
        startApp({ REDIS_CLUSTER_NODES: cluster.nodes, ...env }),
      ]);
    });
    afterAll(async () => {
      await Promise.all([a?.close(), b?.close()]);
    });

    let ip = 0;
    const send = async (app: RunningApp, phone: string) => {
      ip += 1;
      const res = await fetch(`${app.baseUrl}/api/v1/auth/send-otp`, {
        method: "POST",
        headers: { "content-type": "application/json", "x-forwarded-for": `10.9.${ip >> 8}.${ip & 255}` },
        body: JSON.stringify({ phone }),
      });
      return { status: res.status, body: (await res.json()) as Record<string, unknown> };
    };

    /** Every SMS counter's value (the per-IP ones and the give-back markers aside), missing read as 0. */
    const counters = async (scope: { keys(p?: string): Promise<string[]> } = cluster, client = db) => {
      const keys = (await scope.keys("rl:*")).filter(
        (k) => !k.startsWith("rl:send-ip:") && !k.startsWith("rl:op:"),
      );
      const out: Record<string, number> = {};
      for (const k of keys.sort()) {
        const n = Number((await client.get(k)) ?? 0);
        if (n !== 0) out[k] = n;
      }
      return out;
    };

    it("keeps a phone's counters in the phone's slot, beside its code", async () => {
      const phone = uniquePhone();
      expect((await send(a, phone)).status).toBe(200);
      // The verification record is written just after the answer, so wait for it.
      const keys = await until(
        async () => {
          const found = (await cluster.keys(`*{${phone}}*`)).sort();
          return found.includes(`vers:{${phone}}`) ? found : undefined;
        },
        { what: "the verification record beside the code" },
      );
      // The marker lets this send's counting be given back if its SMS fails.
      expect(keys).toEqual([
        `otp:{${phone}}`,
        expect.stringMatching(new RegExp(`^rl:op:\\{\\${phone}\\}:`)),
        `rl:send-cooldown:{${phone}}`,
        `rl:send-phone:{${phone}}`,
        `vers:{${phone}}`,
      ]);
      const shards = (await cluster.keys("rl:sms-global:*")).length;
      expect(shards).toBeGreaterThanOrEqual(1);
      expect(shards).toBeLessThanOrEqual(8);
    });

    it("a refused send gives back what the other shards counted", async () => {
      const phone = uniquePhone();
      expect((await send(a, phone)).status).toBe(200);
      const before = await counters();
      const markers = (await cluster.keys("rl:op:*")).sort();
      for (const app of [a, b, a, b]) {
        const r = await send(app, phone);
        expect(r.body.reason).toBe("OTP_COOLDOWN");
      }
      expect(await counters()).toEqual(before);
      // A give-back deletes its marker: markers are left only by sends that went out.
      expect((await cluster.keys("rl:op:*")).sort()).toEqual(markers);
    });

    it("one master frozen mid-send: 503 within the command timeout, and after SIGCONT every counter is as before", async () => {
      const phone = uniquePhone();
      const prefixKey = `rl:sms-prefix:{${phone.slice(0, -4)}}`;
      const frozen = await cluster.masterOf(prefixKey);
      const before = await counters();
      cluster.pause(frozen.port);
      let status: number;
      const started = Date.now();
      try {
        status = (await send(b, phone)).status;
      } finally {
        cluster.resume(frozen.port);
      }
      expect(status).toBe(503);
      expect(Date.now() - started).toBeLessThan(3_000);
      await until(async () => JSON.stringify(await counters()) === JSON.stringify(before), {
        what: "every counter to be back where it was",
        timeoutMs: 10_000,
      });
      // And the phone can have its code once the master answers again.
      await until(async () => (await send(a, phone)).status === 200, { what: "the send to go through" });
    });

    it("the spread budget admits exactly SMS_MAX_PER_HOUR, never more, across two instances", async () => {
      const scope = cluster.fresh();
      const budget = 12;
      const [x, y] = await Promise.all([
        startApp({ REDIS_CLUSTER_NODES: scope.nodes, ...env, SMS_MAX_PER_HOUR: String(budget) }),
        startApp({ REDIS_CLUSTER_NODES: scope.nodes, ...env, SMS_MAX_PER_HOUR: String(budget) }),
      ]);
      try {
        const results = await Promise.all(
          Array.from({ length: 40 }, (_, i) => send(i % 2 ? x : y, uniquePhone())),
        );
        // A send tries up to 3 shards: a burst may be refused while one shard still has room, later sends
        // find it (each misses the last shard with room with probability 7/8 · 6/7 · 5/6 = 5/8 at most).
        for (let i = 0; i < 30; i++) results.push(await send(i % 2 ? x : y, uniquePhone()));
        const sent = results.filter((r) => r.status === 200).length;
        expect(results.every((r) => r.status === 200 || r.body.reason === "SMS_BUDGET_EXHAUSTED")).toBe(true);
        expect(sent).toBe(budget);
        // Each shard admitted at most its share: the shards' counts add up to exactly what went out.
        const client = scope.client();
        const shards = await scope.keys("rl:sms-global:*");
        const counted = (await Promise.all(shards.map((k) => client.get(k)))).reduce(
          (sum, v) => sum + Number(v ?? 0),
          0,
        );
        expect(counted).toBe(sent);
        expect(shards.length).toBeGreaterThan(1);
      } finally {
        await Promise.all([x.close(), y.close()]);
      }
    });

    it("development provider: a loopback caller skips the per-phone and per-IP limits, the lock still holds", async () => {
      // As test/dev-mode.test.ts on the embedded store: npm start's limits, the development provider itself.
      const scope = cluster.fresh();
      const dev = await startApp(
        {
          REDIS_CLUSTER_NODES: scope.nodes,
          NODE_ENV: undefined,
          RATE_LIMIT_IP_POINTS: undefined,
          RATE_LIMIT_PHONE_SEND_POINTS: undefined,
          RATE_LIMIT_PHONE_COOLDOWN_SECONDS: undefined,
          RATE_LIMIT_PHONE_FAILURES: "2",
        },
        { configuredSms: true },
      );
      const post = async (path: string, body: unknown, headers: Record<string, string> = {}) => {
        const res = await fetch(`${dev.baseUrl}/api/v1/auth/${path}`, {
          method: "POST",
          headers: { "content-type": "application/json", ...headers },
          body: JSON.stringify(body),
        });
        return { status: res.status, reason: ((await res.json()) as { reason?: string }).reason };
      };
      try {
        const phone = uniquePhone();
        for (let i = 0; i < 8; i++)
          expect((await post("send-otp", { phone })).status, `send ${i + 1}`).toBe(200);
        // Nothing keyed by the phone or the address was counted for the exempt caller.
        expect(await scope.keys(`rl:send-*`)).toEqual([]);
        // The lock is checked in the phone's group, which now holds no counter of its own.
        const locked = uniquePhone();
        await post("send-otp", { phone: locked });
        const tries = [await post("verify-otp", { phone: locked, otp: "000000" })];
        tries.push(await post("verify-otp", { phone: locked, otp: "000001" }));
        if (tries.some((t) => t.status === 200)) return; // a guess was the code: proves nothing either way
        expect((await post("send-otp", { phone: locked })).reason).toBe("PHONE_LOCKED");
        // Through a proxy is not loopback: limited as anyone.
        const proxied = uniquePhone();
        const via = { "x-forwarded-for": "127.0.0.1" };
        expect((await post("send-otp", { phone: proxied }, via)).status).toBe(200);
        expect((await post("send-otp", { phone: proxied }, via)).reason).toBe("OTP_COOLDOWN");
      } finally {
        await dev.close();
      }
    });
  },
  { nodeTimeoutMs: 5_000 },
);
