import { execFile } from "node:child_process";
import { mkdirSync, mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { join, resolve } from "node:path";
import { promisify } from "node:util";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { type RunningApp, startApp } from "./support/app.js";

const run = promisify(execFile);
const root = resolve(import.meta.dirname, "..");

/**
 * The package as a caller gets it: built, packed with `npm pack` (so `files` and `exports` are what is tested),
 * unpacked into a consumer's node_modules, then imported by plain Node and type-checked by tsc. The consumer
 * lives under our node_modules so the package's own dependencies resolve from there, offline.
 */
describe("the packed package, imported the way another service would", () => {
  let work: string;
  let files: string[];
  let s: RunningApp;

  beforeAll(async () => {
    await run("npx", ["--no-install", "tsc", "-p", "tsconfig.build.json"], { cwd: root });
    work = mkdtempSync(join(root, "node_modules", ".otp-auth-pack-test-"));
    const { stdout } = await run("npm", ["pack", "--json", "--pack-destination", work], { cwd: root });
    const [packed] = JSON.parse(stdout) as { filename: string; files: { path: string }[] }[];
    if (!packed) throw new Error(`npm pack said: ${stdout}`);
    files = packed.files.map((f) => f.path);
    const pkg = join(work, "node_modules", "otp-auth");
    mkdirSync(pkg, { recursive: true });
    await run("tar", ["-xzf", join(work, packed.filename), "-C", pkg, "--strip-components=1"]);
    s = await startApp();
  }, 180_000);
  afterAll(async () => {
    await s?.close();
    if (work) rmSync(work, { recursive: true, force: true });
  });

  it("ships the built client surface and generated code", () => {
    expect(files).toEqual(
      expect.arrayContaining([
        "package.json",
        "dist/src/index.js",
        "dist/src/index.d.ts",
        "dist/gen/auth/v1/auth_pb.js",
        "dist/gen/auth/v1/auth_pb.d.ts",
        "proto/auth/v1/auth.proto",
      ]),
    );
  });

  it("imports from `otp-auth` and `otp-auth/gen/...` in plain Node and calls the live server", async () => {
    writeFileSync(
      join(work, "consumer.mjs"),
      `
import { AuthService as FromGen, SendOtpRequestSchema } from "otp-auth/gen/auth/v1/auth_pb.js";
import { AuthService, authInterceptor, authUserKey, createAuthClient, createTokenVerifier } from "otp-auth";
if (FromGen.typeName !== "auth.v1.AuthService" || AuthService.typeName !== FromGen.typeName) throw new Error("AuthService");
if (SendOtpRequestSchema.typeName !== "auth.v1.SendOtpRequest") throw new Error("schema");
for (const f of [authInterceptor, createTokenVerifier]) if (typeof f !== "function") throw new Error("export");
if (authUserKey.defaultValue !== undefined) throw new Error("authUserKey");
const auth = createAuthClient({ baseUrl: process.env.BASE_URL, protocol: "connect" });
const sent = await auth.sendOtp({ phone: "+919876543210" });
console.log(JSON.stringify({ phone: sent.phone, codeLength: sent.codeLength }));
`,
    );
    const { stdout } = await run(process.execPath, ["consumer.mjs"], {
      cwd: work,
      env: { PATH: process.env.PATH, BASE_URL: s.baseUrl },
    });
    expect(JSON.parse(stdout)).toEqual({ phone: "+919876543210", codeLength: 6 });
    expect(s.sms.lastCode("+919876543210")).toMatch(/^\d{6}$/);
  });

  it("type-checks a TypeScript caller against the package's declarations", async () => {
    writeFileSync(
      join(work, "consumer.ts"),
      `
import type { HandlerContext } from "@connectrpc/connect";
import { type VerifyOtpResponse, VerifyOtpResponseSchema } from "otp-auth/gen/auth/v1/auth_pb.js";
import { type AuthClient, type AuthUser, authUserKey, createAuthClient, createTokenVerifier } from "otp-auth";
const auth: AuthClient = createAuthClient({ baseUrl: "http://localhost:8000", protocol: "grpc" });
export async function login(phone: string, otp: string): Promise<VerifyOtpResponse> {
  return auth.verifyOtp({ phone, otp });
}
export const verifier = createTokenVerifier({ jwksUrl: "http://localhost:8000/.well-known/jwks.json" });
export const who = (ctx: HandlerContext): AuthUser | undefined => ctx.values.get(authUserKey);
export const schemaName: "auth.v1.VerifyOtpResponse" = VerifyOtpResponseSchema.typeName;
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
  });
});
