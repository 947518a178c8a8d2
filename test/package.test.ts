import { execFile } from "node:child_process";
import { mkdtempSync, readdirSync, rmSync, statSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join, resolve } from "node:path";
import { promisify } from "node:util";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { type RunningApp, startApp } from "./support/app.js";
import { uniquePhone } from "./support/capture-sms.js";

const run = promisify(execFile);
const root = resolve(import.meta.dirname, "..");
const MAX_INSTALL_BYTES = 15 * 1024 * 1024;

function bytesUnder(dir: string): number {
  let total = 0;
  for (const entry of readdirSync(dir, { withFileTypes: true })) {
    const path = join(dir, entry.name);
    if (entry.isDirectory()) total += bytesUnder(path);
    else if (entry.isFile()) total += statSync(path).size;
  }
  return total;
}

/**
 * `@otp-auth/client` as a caller gets it: packed with `npm pack` (its prepack builds dist/, so `files` and
 * `exports` are what is tested), installed from the tarball with `npm install` into a fresh project outside
 * this repository (its dependencies come from the npm cache or registry, never from our node_modules), then
 * used by plain Node over gRPC and Connect against the live server and type-checked by tsc.
 */
describe("@otp-auth/client, packed and installed into a fresh project", () => {
  let work: string;
  let files: string[];
  let installedBytes: number;
  let s: RunningApp;

  beforeAll(async () => {
    work = mkdtempSync(join(tmpdir(), "otp-auth-client-consumer-"));
    const packed = await run("npm", ["pack", "--json", "--pack-destination", work], {
      cwd: join(root, "packages", "client"),
    });
    // The prepack build's own output comes first on stdout.
    const [info] = JSON.parse(packed.stdout.slice(packed.stdout.indexOf("[\n"))) as {
      filename: string;
      files: { path: string }[];
    }[];
    if (!info) throw new Error(`npm pack said: ${packed.stdout}`);
    files = info.files.map((f) => f.path);
    writeFileSync(
      join(work, "package.json"),
      JSON.stringify({ name: "consumer", private: true, type: "module" }),
    );
    await run(
      "npm",
      ["install", "--prefer-offline", "--no-audit", "--no-fund", "--loglevel=error", `./${info.filename}`],
      { cwd: work },
    );
    installedBytes = bytesUnder(join(work, "node_modules"));
    if (process.env.PRINT_SIZES) process.stdout.write(`consumer node_modules: ${installedBytes} bytes\n`);
    s = await startApp();
  }, 110_000);
  afterAll(async () => {
    await s?.close();
    if (work) rmSync(work, { recursive: true, force: true });
  });

  it("ships the built client and generated code, and nothing of the server", () => {
    expect(files).toEqual(
      expect.arrayContaining([
        "package.json",
        "dist/packages/client/src/index.js",
        "dist/packages/client/src/index.d.ts",
        "dist/gen/auth/v1/auth_pb.js",
        "dist/gen/auth/v1/auth_pb.d.ts",
        "dist/gen/google/rpc/error_details_pb.js",
      ]),
    );
    const server = files.filter((f) => /(^|\/)(src\/(login|http|rpc|otp|sms)|gen\/grpc)\//.test(f));
    expect(server).toEqual([]);
  });

  it("installs in under 15 MB with its dependencies", () => {
    expect(installedBytes).toBeLessThan(MAX_INSTALL_BYTES);
    const installed = readdirSync(join(work, "node_modules"), { recursive: true, withFileTypes: false })
      .map(String)
      .filter((p) => /^(@[^/]+\/)?[^/@][^/]*$/.test(p) && !p.startsWith("."));
    expect(installed).not.toContain("@grpc");
    expect(installed).not.toContain("ioredis");
  });

  it("logs in over gRPC and reads a refusal's reason over Connect, from plain Node", async () => {
    writeFileSync(
      join(work, "consumer.mjs"),
      `
import { ConnectError } from "@connectrpc/connect";
import { ErrorInfoSchema } from "@otp-auth/client/gen/google/rpc/error_details_pb.js";
import { AuthService as FromGen } from "@otp-auth/client/gen/auth/v1/auth_pb.js";
import { AuthService, createAuthClient, createTokenVerifier } from "@otp-auth/client";
if (AuthService !== FromGen) throw new Error("two copies of the generated code");
const [baseUrl, phone, step, otp] = process.argv.slice(2);
const grpc = createAuthClient({ baseUrl, protocol: "grpc", timeoutMs: 5000 });
const connect = createAuthClient({ baseUrl, protocol: "connect", timeoutMs: 5000 });
if (step === "send") {
  const sent = await grpc.sendOtp({ phone });
  console.log(JSON.stringify({ phone: sent.phone }));
} else {
  const reason = await connect.verifyOtp({ phone, otp: "0000000" }).then(
    () => "accepted",
    (err) => ConnectError.from(err).findDetails(ErrorInfoSchema)[0]?.reason,
  );
  const tokens = await grpc.verifyOtp({ phone, otp });
  const verifier = createTokenVerifier({ jwksUrl: new URL("/.well-known/jwks.json", baseUrl) });
  const user = await verifier.verify(tokens.accessToken);
  const refreshed = await connect.refreshToken({ refreshToken: tokens.refreshToken });
  console.log(JSON.stringify({ reason, phone: user.phone, refreshed: refreshed.tokenType }));
}
`,
    );
    const phone = uniquePhone();
    const node = (...args: string[]) =>
      run(process.execPath, ["consumer.mjs", s.baseUrl, phone, ...args], {
        cwd: work,
        env: { PATH: process.env.PATH },
      });
    expect(JSON.parse((await node("send")).stdout)).toEqual({ phone });
    const code = s.sms.lastCode(phone);
    expect(code).toMatch(/^\d{6}$/);
    expect(JSON.parse((await node("verify", code ?? "")).stdout)).toEqual({
      reason: "INVALID_OTP_FORMAT",
      phone,
      refreshed: "bearer",
    });
  });

  it("type-checks a TypeScript caller against the package's declarations", async () => {
    writeFileSync(
      join(work, "consumer.ts"),
      `
import type { HandlerContext } from "@connectrpc/connect";
import { type VerifyOtpResponse, VerifyOtpResponseSchema } from "@otp-auth/client/gen/auth/v1/auth_pb.js";
import { type ErrorInfo } from "@otp-auth/client/gen/google/rpc/error_details_pb.js";
import { type AuthClient, type AuthUser, authUserKey, createAuthClient, createTokenVerifier } from "@otp-auth/client";
const auth: AuthClient = createAuthClient({ baseUrl: "http://localhost:8000", protocol: "grpc" });
export async function login(phone: string, otp: string): Promise<VerifyOtpResponse> {
  return auth.verifyOtp({ phone, otp });
}
export const verifier = createTokenVerifier({ jwksUrl: "http://localhost:8000/.well-known/jwks.json" });
export const who = (ctx: HandlerContext): AuthUser | undefined => ctx.values.get(authUserKey);
export const schemaName: "auth.v1.VerifyOtpResponse" = VerifyOtpResponseSchema.typeName;
export const reasonOf = (info: ErrorInfo): string => info.reason;
`,
    );
    writeFileSync(
      join(work, "tsconfig.json"),
      JSON.stringify({
        compilerOptions: {
          target: "ES2022",
          module: "NodeNext",
          moduleResolution: "NodeNext",
          strict: true,
          noEmit: true,
          skipLibCheck: true,
          types: ["node"],
          // The consumer installs no @types/node of its own; ours stands in for it.
          typeRoots: [join(root, "node_modules", "@types")],
        },
        files: ["consumer.ts"],
      }),
    );
    const tsc = join(root, "node_modules", "typescript", "bin", "tsc");
    const res = await run(process.execPath, [tsc, "-p", "tsconfig.json"], { cwd: work }).then(
      () => "",
      (err: { stdout?: string }) => err.stdout ?? String(err),
    );
    expect(res).toBe("");
  }, 90_000);
});
