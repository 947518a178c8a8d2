import { type ChildProcess, execFile, spawn } from "node:child_process";
import { generateKeyPairSync } from "node:crypto";
import { cpSync, mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { request as httpRequest } from "node:http";
import { createServer, type Server } from "node:https";
import type { AddressInfo } from "node:net";
import { tmpdir } from "node:os";
import { join, resolve } from "node:path";
import { promisify } from "node:util";
import { afterAll, beforeAll, expect, it } from "vitest";
import { imageRuntime } from "../bench/image-runtime.js";
import { createAuthClient } from "../packages/client/src/index.js";
import { uniquePhone } from "./support/capture-sms.js";
import { type FakeTwilio, startFakeTwilio } from "./support/fake-twilio.js";
import { describeWithRedis } from "./support/redis.js";
import { until } from "./support/wait.js";

const run = promisify(execFile);
const root = resolve(import.meta.dirname, "..");

/**
 * What the Dockerfile's runtime stage holds, without a container engine: `npm ci --omit=dev` from the lock
 * file, `dist/` from `npm run build` and openapi.yaml, in a directory of its own. Started as production starts
 * it (NODE_ENV=production, Redis, Twilio, every secret through *_FILE) and used for a whole login over REST
 * and gRPC. Production accepts only https provider URLs, so the fake Twilio sits behind a TLS proxy with a
 * throwaway certificate the child trusts through NODE_EXTRA_CA_CERTS.
 */
describeWithRedis("the runtime stage: production dependencies and dist/ only", (redis) => {
  let work: string;
  let twilio: FakeTwilio;
  let tls: Server;
  let child: ChildProcess | undefined;
  let output = "";
  let baseUrl: string;

  beforeAll(async () => {
    work = mkdtempSync(join(tmpdir(), "otp-auth-runtime-"));
    const app = join(work, "app");
    mkdirSync(join(app, "packages", "client"), { recursive: true });
    for (const f of ["package.json", "package-lock.json", "packages/client/package.json"]) {
      cpSync(join(root, f), join(app, f));
    }
    const build = run("npm", ["run", "build"], { cwd: root });
    await run(
      "npm",
      ["ci", "--omit=dev", "--prefer-offline", "--no-audit", "--no-fund", "--loglevel=error"],
      {
        cwd: app,
      },
    );
    await build;
    cpSync(join(root, "dist"), join(app, "dist"), { recursive: true });
    cpSync(join(root, "openapi.yaml"), join(app, "openapi.yaml"));

    await run("openssl", [
      ...["req", "-x509", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:prime256v1", "-nodes"],
      ...["-keyout", join(work, "key.pem"), "-out", join(work, "cert.pem"), "-days", "1"],
      ...["-subj", "/CN=127.0.0.1", "-addext", "subjectAltName=IP:127.0.0.1"],
    ]);
    twilio = await startFakeTwilio();
    const upstream = new URL(twilio.baseUrl);
    tls = createServer({ key: readPem(work, "key.pem"), cert: readPem(work, "cert.pem") }, (req, res) => {
      const out = httpRequest(
        {
          host: upstream.hostname,
          port: upstream.port,
          path: req.url,
          method: req.method,
          headers: req.headers,
        },
        (up) => {
          res.writeHead(up.statusCode ?? 502, up.headers);
          up.pipe(res);
        },
      );
      req.pipe(out);
    });
    await new Promise<void>((ok) => tls.listen(0, "127.0.0.1", ok));

    const secrets = join(work, "secrets");
    mkdirSync(secrets);
    const secret = (name: string, value: string) => {
      writeFileSync(join(secrets, name), value, { mode: 0o400 });
      return join(secrets, name);
    };
    const pem = generateKeyPairSync("ed25519").privateKey.export({ format: "pem", type: "pkcs8" }).toString();
    const image = imageRuntime(join(root, "Dockerfile"));
    child = spawn(process.execPath, [...image.cmdFlags, "dist/src/main.js"], {
      cwd: app,
      stdio: ["ignore", "pipe", "pipe"],
      env: {
        PATH: process.env.PATH,
        NODE_ENV: "production",
        // The image's heap limit, GC flags and allocator setting, as the Dockerfile sets them.
        ...image.env,
        NODE_OPTIONS: image.nodeOptions,
        NODE_EXTRA_CA_CERTS: join(work, "cert.pem"),
        HOST: "127.0.0.1",
        PORT: "0",
        APP_NAME: "Runtime Test",
        REDIS_URL: redis.url,
        SMS_PROVIDER: "twilio",
        TWILIO_ACCOUNT_SID: twilio.accountSid,
        TWILIO_AUTH_TOKEN_FILE: secret("twilio_auth_token", `${twilio.authToken}\n`),
        TWILIO_PHONE_NUMBER: "+15005550006",
        TWILIO_API_BASE_URL: `https://127.0.0.1:${(tls.address() as AddressInfo).port}`,
        OTP_SECRET_FILE: secret("otp_secret", `${"k".repeat(48)}\n`),
        JWT_PRIVATE_KEY_FILE: secret("jwt_private_key", pem),
      },
    });
    child.stdout?.on("data", (d: Buffer) => {
      output += d.toString();
    });
    child.stderr?.on("data", (d: Buffer) => {
      output += d.toString();
    });
    const port = await until(
      () => {
        if (child?.exitCode !== null) throw new Error(`the service exited:\n${output}`);
        return /"port":(\d+)/.exec(output)?.[1];
      },
      { timeoutMs: 30_000, what: () => `the listening line in:\n${output}` },
    );
    baseUrl = `http://127.0.0.1:${port}`;
    await until(async () => (await fetch(`${baseUrl}/readyz`)).ok, { what: "readiness" });
  }, 110_000);

  afterAll(async () => {
    child?.kill("SIGKILL");
    await twilio?.close();
    await new Promise((ok) => (tls ? tls.close(ok) : ok(undefined)));
    if (work) rmSync(work, { recursive: true, force: true });
  });

  const codeFor = async (phone: string) =>
    until(() => /\b(\d{6})\b/.exec(twilio.messages.findLast((m) => m.to === phone)?.body ?? "")?.[1], {
      what: `an SMS to ${phone}`,
    });

  it("signs in over REST through Twilio, and serves /openapi.json", async () => {
    const phone = uniquePhone();
    const post = (path: string, body: object) =>
      fetch(`${baseUrl}${path}`, {
        method: "POST",
        headers: { "content-type": "application/json" },
        body: JSON.stringify(body),
      });
    expect((await post("/api/v1/auth/send-otp", { phone })).status).toBe(200);
    const login = await post("/api/v1/auth/verify-otp", { phone, otp: await codeFor(phone) });
    expect(login.status).toBe(200);
    const { refresh_token } = (await login.json()) as { refresh_token: string };
    expect((await post("/api/v1/auth/refresh", { refresh_token })).status).toBe(200);
    expect(twilio.messages.at(-1)?.body).toMatch(/Runtime Test/);
    expect((await fetch(`${baseUrl}/openapi.json`)).status).toBe(200);
  });

  it("signs in over gRPC, then stops on SIGTERM", async () => {
    const auth = createAuthClient({ baseUrl, protocol: "grpc", timeoutMs: 5000 });
    const phone = uniquePhone();
    await auth.sendOtp({ phone });
    const session = await auth.verifyOtp({ phone, otp: await codeFor(phone) });
    expect(session.user?.phone).toBe(phone);
    const exited = new Promise<number | null>((ok) => child?.once("exit", ok));
    child?.kill("SIGTERM");
    expect(await exited).toBe(0);
  });
});

function readPem(dir: string, name: string): Buffer {
  return readFileSync(join(dir, name));
}
