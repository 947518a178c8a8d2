import { readFileSync } from "node:fs";
import { join, resolve } from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { parse, parseAllDocuments } from "yaml";
import { imageRuntime } from "../bench/image-runtime.js";
import { knownVariables } from "../src/config.js";
import { type RunningApp, startApp } from "./support/app.js";

const root = resolve(import.meta.dirname, "..");
const read = (path: string) => readFileSync(join(root, path), "utf8");

interface EnvVar {
  name: string;
  value?: string;
  valueFrom?: { secretKeyRef?: { name: string; key: string } };
}
interface Probe {
  httpGet: { path: string; port: string | number };
}
interface Container {
  ports: { name?: string; containerPort: number }[];
  env: EnvVar[];
  volumeMounts: { name: string; mountPath: string }[];
  readinessProbe: Probe;
  livenessProbe: Probe;
  lifecycle: { preStop: { sleep?: { seconds: number } } };
}
interface Manifest {
  kind: string;
  metadata: { name: string; labels?: Record<string, string> };
  spec: Record<string, unknown>;
  stringData?: Record<string, string>;
}

const manifests = (file: string) => parseAllDocuments(read(file)).map((d) => d.toJS() as Manifest);

/**
 * The deployment kit checked against the code, since no container can be built here: every variable it sets is
 * one the config readers know, the ports are the one the service listens on, the probe paths answer, and the
 * grace periods outlast the drain.
 */
describe("deployment files agree with the code", () => {
  const known = new Set(knownVariables());
  let s: RunningApp;
  beforeAll(async () => {
    s = await startApp();
  });
  afterAll(() => s?.close());

  const answers = async (path: string) => (await fetch(`${s.baseUrl}${path}`)).status;

  it("compose.yaml: known variables, the service's port, secrets as files, Redis with appendonly", async () => {
    const compose = parse(read("compose.yaml")) as {
      services: Record<string, Record<string, unknown>>;
      secrets: Record<string, { file: string }>;
      volumes: Record<string, unknown>;
    };
    const app = compose.services["otp-auth"] ?? {};
    const env = app.environment as Record<string, string>;
    expect(Object.keys(env).filter((n) => !known.has(n))).toEqual([]);
    expect(app.ports).toEqual([`${env.PORT}:${env.PORT}`]);
    for (const [name, path] of Object.entries(env).filter(([n]) => n.endsWith("_FILE"))) {
      expect(app.secrets, name).toContain(path.replace("/run/secrets/", ""));
      expect(compose.secrets[path.replace("/run/secrets/", "")], name).toBeDefined();
    }
    const health = (app.healthcheck as { test: string[] }).test.join(" ");
    const probed = /127\.0\.0\.1:8000(\/\w+)/.exec(health)?.[1] ?? "";
    expect(await answers(probed)).toBe(200);
    expect(Number.parseInt(String(app.stop_grace_period), 10) * 1000).toBeGreaterThan(
      Number(env.SHUTDOWN_TIMEOUT_MS),
    );
    const redis = compose.services.redis ?? {};
    expect((redis.command as string[]).join(" ")).toMatch(/--appendonly yes/);
    expect(redis.volumes).toEqual(["redis-data:/data"]);
    expect(redis.healthcheck).toBeDefined();
    expect(compose.volumes).toHaveProperty("redis-data");
  });

  it("Kubernetes: probes that answer, one port, grace above the drain, known variables, secrets that exist", async () => {
    const all = manifests("deploy/kubernetes/deployment.yaml");
    const secrets = manifests("deploy/kubernetes/secret.example.yaml");
    const deployment = all.find((m) => m.kind === "Deployment");
    const service = all.find((m) => m.kind === "Service");
    const pdb = all.find((m) => m.kind === "PodDisruptionBudget");
    if (!deployment || !service || !pdb)
      throw new Error("Deployment, Service and PodDisruptionBudget expected");
    const pod = (deployment.spec.template as { metadata: { labels: Record<string, string> }; spec: never })
      .spec as {
      terminationGracePeriodSeconds: number;
      containers: Container[];
      volumes: { name: string; secret: { secretName: string } }[];
    };
    const [c] = pod.containers;
    if (!c) throw new Error("no container");
    const env = new Map(c.env.map((e) => [e.name, e]));

    expect(c.env.map((e) => e.name).filter((n) => !known.has(n))).toEqual([]);
    expect(c.ports.map((p) => p.containerPort)).toEqual([Number(env.get("PORT")?.value)]);
    expect(c.readinessProbe.httpGet.path).toBe("/readyz");
    expect(c.livenessProbe.httpGet.path).toBe("/healthz");
    for (const probe of [c.readinessProbe, c.livenessProbe]) {
      expect(await answers(probe.httpGet.path)).toBe(200);
      expect(c.ports.map((p) => p.name)).toContain(probe.httpGet.port);
    }
    const drainMs = Number(env.get("SHUTDOWN_TIMEOUT_MS")?.value);
    const pauseS = c.lifecycle.preStop.sleep?.seconds ?? 0;
    expect(pod.terminationGracePeriodSeconds * 1000).toBeGreaterThan(drainMs + pauseS * 1000);

    const ports = (service.spec.ports as { port: number; targetPort: string }[]).map((p) => p.targetPort);
    expect(ports).toEqual(c.ports.map((p) => p.name));
    const labels = (deployment.spec.template as { metadata: { labels: Record<string, string> } }).metadata
      .labels;
    expect(labels).toMatchObject((pdb.spec.selector as { matchLabels: object }).matchLabels);
    expect(labels).toMatchObject(service.spec.selector as object);

    const secretKeys = new Map(secrets.map((m) => [m.metadata.name, Object.keys(m.stringData ?? {})]));
    for (const e of c.env) {
      const ref = e.valueFrom?.secretKeyRef;
      if (ref) expect(secretKeys.get(ref.name), e.name).toContain(ref.key);
    }
    const [volume] = pod.volumes;
    const mount = c.volumeMounts.find((m) => m.name === volume?.name);
    for (const e of c.env.filter((v) => v.name.endsWith("_FILE"))) {
      const file = e.value ?? "";
      expect(file.startsWith(`${mount?.mountPath}/`), e.name).toBe(true);
      expect(secretKeys.get(volume?.secret.secretName ?? ""), e.name).toContain(file.split("/").pop());
    }
  });

  it("Dockerfile: production dependencies only, non-root, health on /healthz, SIGTERM", async () => {
    const docker = read("Dockerfile");
    expect(docker).toMatch(/^FROM .* AS build$/m);
    expect(docker).toMatch(/npm ci --omit=dev/);
    expect(docker).toMatch(/^USER node$/m);
    expect(docker).toMatch(/^STOPSIGNAL SIGTERM$/m);
    expect(docker).toMatch(/^EXPOSE 8000$/m);
    expect(docker).toMatch(/COPY openapi\.yaml/);
    expect(docker).toMatch(/HEALTHCHECK[\s\S]*\/healthz/);
    expect(await answers("/healthz")).toBe(200);
  });

  it("Dockerfile: a heap limit that fits the Kubernetes memory limit with room for the rest of the process", () => {
    const { nodeOptions } = imageRuntime(join(root, "Dockerfile"));
    const heapMb = Number(/--max-old-space-size=(\d+)/.exec(nodeOptions)?.[1]);
    const deployment = manifests("deploy/kubernetes/deployment.yaml").find((m) => m.kind === "Deployment");
    const limit = /limits: \{ memory: (\d+)Mi \}/.exec(read("deploy/kubernetes/deployment.yaml"))?.[1];
    expect(deployment).toBeDefined();
    expect(heapMb).toBeGreaterThan(0);
    // Young generation, code, buffers and native memory come on top of the old generation: keep a third free.
    expect(heapMb).toBeLessThanOrEqual((Number(limit) * 2) / 3);
  });

  it(".env.example names every variable the readers know, and no other", () => {
    const names = [...read(".env.example").matchAll(/^#? ?([A-Z][A-Z0-9_]+)=/gm)].map((m) => m[1]);
    expect([...new Set(names)].sort()).toEqual([...known].sort());
  });
});
