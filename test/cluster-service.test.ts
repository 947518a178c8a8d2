import { afterAll, beforeAll, expect, it } from "vitest";
import { StoreUnavailableError } from "../src/login/failures.js";
import { connectRedis, untilReady } from "../src/redis/connect.js";
import { redisCall } from "../src/redis/errors.js";
import { type RunningApp, startApp } from "./support/app.js";
import { uniquePhone } from "./support/capture-sms.js";
import { describeWithRedisCluster } from "./support/redis-cluster.js";
import { until } from "./support/wait.js";

// The service on a Redis Cluster: a whole login, and readiness that needs every master.
describeWithRedisCluster(
  "the service on a cluster",
  (cluster) => {
    let s: RunningApp;
    beforeAll(async () => {
      // A loaded 2-core machine can take a replica well past the production default to acknowledge a new user.
      s = await startApp({ REDIS_CLUSTER_NODES: cluster.nodes, REDIS_REPLICA_ACK_TIMEOUT_MS: "5000" });
    });
    afterAll(() => s?.close());

    const post = async (path: string, body: unknown) => {
      const res = await fetch(`${s.baseUrl}/api/v1/auth/${path}`, {
        method: "POST",
        headers: { "content-type": "application/json" },
        body: JSON.stringify(body),
      });
      return { status: res.status, body: (await res.json()) as Record<string, unknown> };
    };
    const readyz = async () => {
      const res = await fetch(`${s.baseUrl}/readyz`);
      return { status: res.status, body: (await res.json()) as { checks: Record<string, string> } };
    };

    it("signs in, refreshes and logs out; the phone's keys share one slot, the user's tokens another", async () => {
      const phone = uniquePhone();
      expect((await post("send-otp", { phone })).status).toBe(200);
      const login = await post("verify-otp", { phone, otp: s.sms.lastCode(phone) });
      expect(login.status).toBe(200);
      const refreshed = await post("refresh", { refresh_token: login.body.refresh_token });
      expect(refreshed.status).toBe(200);
      expect((await post("logout", { refresh_token: refreshed.body.refresh_token })).status).toBe(200);
      const again = await post("verify-otp", { phone, otp: "000000" });
      expect(again.status).toBe(401);
    });

    it("lists and revokes sessions (every session script on the user's slot)", async () => {
      const phone = uniquePhone();
      const call = async (
        method: string,
        path: string,
        opts: { body?: unknown; bearer?: string; ua?: string },
      ) => {
        const headers: Record<string, string> = { "content-type": "application/json" };
        if (opts.bearer !== undefined) headers.authorization = `Bearer ${opts.bearer}`;
        if (opts.ua !== undefined) headers["user-agent"] = opts.ua;
        const res = await fetch(`${s.baseUrl}/api/v1/auth/${path}`, {
          method,
          headers,
          ...(opts.body === undefined ? {} : { body: JSON.stringify(opts.body) }),
        });
        return { status: res.status, body: (await res.json()) as Record<string, unknown> };
      };
      const login = async (ua: string) => {
        expect((await call("POST", "send-otp", { body: { phone } })).status).toBe(200);
        const r = await call("POST", "verify-otp", { body: { phone, otp: s.sms.lastCode(phone) }, ua });
        expect(r.status).toBe(200);
        return { access: String(r.body.access_token), refresh: String(r.body.refresh_token) };
      };
      const a = await login("phone");
      const b = await login("laptop");
      const listed = await call("GET", "sessions", { bearer: a.access });
      const sessions = listed.body.sessions as { id: string; device_name: string; current: boolean }[];
      expect(sessions.map((x) => [x.device_name, x.current]).sort()).toEqual([
        ["laptop", false],
        ["phone", true],
      ]);
      const laptop = sessions.find((x) => !x.current)?.id ?? "";
      expect((await call("DELETE", `sessions/${laptop}`, { bearer: a.access })).status).toBe(200);
      expect((await call("POST", "refresh", { body: { refresh_token: b.refresh } })).status).toBe(401);
      expect((await call("POST", "sessions/revoke-all", { bearer: a.access })).body.revoked_count).toBe(1);
      expect((await call("POST", "refresh", { body: { refresh_token: a.refresh } })).status).toBe(401);
    });

    it("is ready with every master answering, and not ready while one master is frozen", async () => {
      await until(async () => (await readyz()).status === 200, { what: "/readyz to say 200" });
      const [master] = (await cluster.topology()).filter((n) => n.role === "master");
      if (!master) throw new Error("no master");
      cluster.pause(master.port);
      try {
        const report = await until(
          async () => {
            const r = await readyz();
            return r.status === 503 ? r : undefined;
          },
          { what: "/readyz to say 503 with a master frozen", timeoutMs: 5_000 },
        );
        expect(report.body.checks.store).toMatch(
          new RegExp(`127\\.0\\.0\\.1:${master.port}: (no answer within|Command timed out)`),
        );
      } finally {
        cluster.resume(master.port);
      }
      await until(async () => (await readyz()).status === 200, { what: "/readyz to recover after SIGCONT" });
    });

    it("an auto-pipelined batch whose slots moved to other nodes before it left is Unavailable, not a bug", async () => {
      const redis = connectRedis({ kind: "cluster", nodes: cluster.nodes.split(",") });
      try {
        expect(await untilReady(redis, 5_000)).toBe(true);
        // ioredis's map from a slot to the group of nodes serving it, which its auto-pipelining batches by.
        const groups = (redis as unknown as { _groupsBySlot: unknown[] })._groupsBySlot;
        const slotOf = async (key: string) => Number(await redis.cluster("KEYSLOT", key));
        const k1 = "{drift-a}";
        const s1 = await slotOf(k1);
        let k2 = "";
        let s2 = -1;
        for (let i = 0; s2 < 0 || s2 === s1 || groups[s2] !== groups[s1]; i++) {
          k2 = `{drift-b${i}}`;
          s2 = await slotOf(k2);
        }
        const batch = [redisCall(redis.get(k1)), redisCall(redis.get(k2))];
        // What a slot-map refresh landing before the batch leaves does (a failover while an earlier batch to
        // that node is in flight): k2's slot now belongs to another group.
        const before = groups[s2];
        groups[s2] = "another group";
        const settled = await Promise.allSettled(batch);
        groups[s2] = before;
        for (const r of settled) {
          expect(r.status).toBe("rejected");
          if (r.status !== "rejected") continue;
          expect(r.reason).toBeInstanceOf(StoreUnavailableError);
          expect(String((r.reason as Error).message)).toContain("same slots allocation group");
        }
        // Nothing else is wrong: the same commands go through once the map agrees with itself.
        expect(await Promise.all([redis.get(k1), redis.get(k2)])).toEqual([null, null]);
      } finally {
        redis.disconnect();
      }
    });
  },
  // Long enough that the short freeze above is not taken for a dead master (no failover mid-test).
  { nodeTimeoutMs: 5_000 },
);
