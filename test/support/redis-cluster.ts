import { type ChildProcess, execFile, spawn } from "node:child_process";
import { mkdirSync, mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { promisify } from "node:util";
import { Cluster, Redis } from "ioredis";
import { afterAll, beforeAll, describe } from "vitest";
import { freePort, ownRedisReason } from "./redis.js";
import { until } from "./wait.js";

const run = promisify(execFile);

/** One node of the test cluster as it is now (roles change with failovers). */
export interface ClusterNodeInfo {
  readonly port: number;
  readonly id: string;
  readonly role: "master" | "replica";
  /** A master's first slot; undefined for a replica or an empty master. */
  readonly firstSlot: number | undefined;
  /** A replica's master id. */
  readonly masterId: string | undefined;
}

/**
 * A key space on the test cluster: the keyPrefix of every client (and of the service, through the seed URLs)
 * keeps tests apart without flushing. Prefixes have no braces, so every key's hash tag stays the service's.
 */
export interface ClusterScope {
  /** REDIS_CLUSTER_NODES for the service: every seed URL, carrying this scope's prefix. */
  readonly nodes: string;
  readonly prefix: string;
  /** A fresh cluster client on this scope; closed by the harness. */
  client(): Cluster;
  /** This scope's keys on every master matching a glob, without the prefix. */
  keys(pattern?: string): Promise<string[]>;
  fresh(): ClusterScope;
}

/** A Redis Cluster of this test file's own on loopback: 3 masters, each with 1 replica, data in a temp dir. */
export interface TestRedisCluster extends ClusterScope {
  /** Every node, by its role now. */
  topology(): Promise<ClusterNodeInfo[]>;
  /** The master serving `key`'s slot now (the key as stored, with any prefix). */
  masterOf(key: string): Promise<ClusterNodeInfo>;
  /** A plain client on one node (CLUSTER commands, INFO). */
  node(port: number): Redis;
  /** SIGSTOP: the node keeps its connections but answers nothing. */
  pause(port: number): void;
  resume(port: number): void;
  /** SIGKILL, as a crashed host. */
  kill(port: number): Promise<void>;
  /** Waits until every live node sees `cluster_state:ok` and every replica's link to its master is up. */
  healthy(opts?: { readonly timeoutMs?: number }): Promise<void>;
  close(): Promise<void>;
}

export interface ClusterOptions {
  /** cluster-node-timeout: how long a master may be silent before its replica takes over. */
  readonly nodeTimeoutMs?: number;
}

/** `describe` with a cluster of its own for its tests, or skipped (failing under CI=true) without redis-server. */
export function describeWithRedisCluster(
  name: string,
  body: (cluster: TestRedisCluster) => void,
  opts: ClusterOptions = {},
): void {
  const skip = ownRedisReason();
  describe.skipIf(skip)(skip ? `${name} [skipped: ${skip}]` : `${name} (Redis Cluster)`, () => {
    let started: TestRedisCluster | undefined;
    beforeAll(async () => {
      started = await startTestRedisCluster(opts);
    }, 90_000);
    afterAll(() => started?.close(), 30_000);
    const get = (): TestRedisCluster => {
      if (!started) throw new Error(`the cluster of "${name}" is used before its beforeAll ran`);
      return started;
    };
    body({
      get nodes() {
        return get().nodes;
      },
      get prefix() {
        return get().prefix;
      },
      client: () => get().client(),
      keys: (p) => get().keys(p),
      fresh: () => get().fresh(),
      topology: () => get().topology(),
      masterOf: (k) => get().masterOf(k),
      node: (p) => get().node(p),
      pause: (p) => get().pause(p),
      resume: (p) => get().resume(p),
      kill: (p) => get().kill(p),
      healthy: (o) => get().healthy(o),
      close: () => get().close(),
    });
  });
}

const NODES = 6;

export async function startTestRedisCluster(opts: ClusterOptions = {}): Promise<TestRedisCluster> {
  const dir = mkdtempSync(join(tmpdir(), "otp-auth-cluster-"));
  const ports: number[] = [];
  while (ports.length < NODES) {
    const p = await freePort();
    // The cluster bus listens on port + 10000: both must be free and below 65536.
    if (p < 55_000 && !ports.includes(p)) ports.push(p);
  }
  const procs = new Map<number, ChildProcess>();
  const clients: (Redis | Cluster)[] = [];
  const track = <T extends Redis | Cluster>(c: T): T => {
    clients.push(c);
    return c;
  };
  const nodeClients = new Map<number, Redis>();
  const node = (port: number): Redis => {
    let c = nodeClients.get(port);
    if (!c) {
      c = track(new Redis({ port, host: "127.0.0.1", maxRetriesPerRequest: 1, lazyConnect: false }));
      c.on("error", () => {});
      nodeClients.set(port, c);
    }
    return c;
  };

  const startNode = async (port: number) => {
    const nodeDir = join(dir, String(port));
    mkdirSync(nodeDir, { recursive: true });
    const child = spawn(
      "redis-server",
      [
        "--port",
        String(port),
        "--bind",
        "127.0.0.1",
        "--cluster-enabled",
        "yes",
        "--cluster-config-file",
        "nodes.conf",
        "--cluster-node-timeout",
        String(opts.nodeTimeoutMs ?? 1_000),
        "--save",
        "",
        "--appendonly",
        "no",
        "--dir",
        nodeDir,
      ],
      { stdio: ["ignore", "pipe", "pipe"] },
    );
    procs.set(port, child);
    await new Promise<void>((resolve, reject) => {
      let out = "";
      const onData = (d: Buffer) => {
        out += d.toString();
        if (out.includes("Ready to accept connections")) {
          child.stdout?.off("data", onData);
          child.stdout?.resume();
          resolve();
        }
      };
      child.stdout?.on("data", onData);
      child.once("exit", (code) =>
        reject(new Error(`redis-server ${port} exited (${code}): ${out.slice(-500)}`)),
      );
    });
  };

  const close = async () => {
    await Promise.all(clients.splice(0).map((c) => c.quit().catch(() => c.disconnect())));
    await Promise.all(
      [...procs.values()].map(
        (p) =>
          new Promise<void>((resolve) => {
            if (p.exitCode !== null || p.signalCode !== null) return resolve();
            p.once("exit", () => resolve());
            p.kill("SIGCONT");
            p.kill("SIGKILL");
          }),
      ),
    );
    rmSync(dir, { recursive: true, force: true });
  };

  try {
    await Promise.all(ports.map(startNode));
    await run(
      "redis-cli",
      [
        "--cluster",
        "create",
        ...ports.map((p) => `127.0.0.1:${p}`),
        "--cluster-replicas",
        "1",
        "--cluster-yes",
      ],
      { timeout: 30_000 },
    );
  } catch (err) {
    await close();
    throw err;
  }

  const live = () =>
    ports.filter((p) => procs.get(p)?.exitCode === null && procs.get(p)?.signalCode === null);

  const topology = async (): Promise<ClusterNodeInfo[]> => {
    for (const port of live()) {
      const text = await node(port)
        .cluster("NODES")
        .catch(() => undefined);
      if (typeof text !== "string") continue;
      return text
        .trim()
        .split("\n")
        .flatMap((line): ClusterNodeInfo[] => {
          const [id, addr, flags, master, , , , , ...slots] = line.split(" ");
          if (!id || !addr || !flags || flags.includes("fail") || flags.includes("noaddr")) return [];
          const port = Number(addr.split(":")[1]?.split("@")[0]);
          const isMaster = flags.includes("master");
          const first = slots[0]?.split("-")[0];
          return [
            {
              port,
              id,
              role: isMaster ? "master" : "replica",
              firstSlot: isMaster && first !== undefined && /^\d+$/.test(first) ? Number(first) : undefined,
              masterId: isMaster || master === "-" ? undefined : master,
            },
          ];
        });
    }
    throw new Error("no cluster node answers");
  };

  const healthy = async ({ timeoutMs = 30_000 } = {}) => {
    await until(
      async () => {
        for (const port of live()) {
          const info = await node(port)
            .cluster("INFO")
            .catch(() => "");
          if (!String(info).includes("cluster_state:ok")) return false;
          const repl = await node(port)
            .info("replication")
            .catch(() => "");
          if (repl.includes("role:slave") && !repl.includes("master_link_status:up")) return false;
        }
        const nodes = await topology().catch(() => []);
        return nodes.filter((n) => n.role === "master" && n.firstSlot !== undefined).length === 3;
      },
      {
        timeoutMs,
        intervalMs: 100,
        what: "the test cluster to be whole (cluster_state:ok, replicas linked)",
      },
    );
  };
  await healthy().catch(async (err: unknown) => {
    await close();
    throw err;
  });

  let scopes = 0;
  const scope = (prefix: string): ClusterScope => ({
    nodes: ports
      .map((p) => `redis://127.0.0.1:${p}${prefix ? `?keyPrefix=${encodeURIComponent(prefix)}` : ""}`)
      .join(","),
    prefix,
    client: () => {
      const c = track(
        new Cluster(
          ports.map((port) => ({ host: "127.0.0.1", port })),
          { ...(prefix ? { keyPrefix: prefix } : {}), redisOptions: { maxRetriesPerRequest: 2 } },
        ),
      );
      c.on("error", () => {});
      return c;
    },
    keys: async (pattern = "*") => {
      const masters = (await topology()).filter((n) => n.role === "master");
      const found = new Set<string>();
      for (const m of masters) {
        let cursor = "0";
        do {
          const [next, batch] = await node(m.port).scan(
            cursor,
            "MATCH",
            `${prefix}${pattern}`,
            "COUNT",
            1000,
          );
          cursor = next;
          for (const k of batch) found.add(k.slice(prefix.length));
        } while (cursor !== "0");
      }
      return [...found];
    },
    fresh: () => scope(`${prefix}s${++scopes}:`),
  });

  return {
    ...scope(""),
    topology,
    masterOf: async (key) => {
      const slot = Number(await node(live()[0] ?? 0).cluster("KEYSLOT", key));
      const nodes = await topology();
      for (const port of live()) {
        const slots = (await node(port)
          .cluster("SLOTS")
          .catch(() => undefined)) as [number, number, [string, number, string]][] | undefined;
        const range = slots?.find(([from, to]) => slot >= from && slot <= to);
        const owner = nodes.find((n) => n.port === range?.[2][1]);
        if (owner) return owner;
      }
      throw new Error(`no master serves slot ${slot}`);
    },
    node,
    pause: (port) => procs.get(port)?.kill("SIGSTOP"),
    resume: (port) => procs.get(port)?.kill("SIGCONT"),
    kill: async (port) => {
      const p = procs.get(port);
      if (!p || p.exitCode !== null || p.signalCode !== null) return;
      await new Promise<void>((resolve) => {
        p.once("exit", () => resolve());
        p.kill("SIGKILL");
      });
      nodeClients.get(port)?.disconnect();
      nodeClients.delete(port);
    },
    healthy,
    close,
  };
}
