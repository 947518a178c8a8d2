import { spawn } from "node:child_process";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { type RunningApp, startApp } from "./support/app.js";
import { uniquePhone } from "./support/capture-sms.js";

/**
 * Runs an example as a person would: start it, wait for its prompt, type the code the "phone" received, and
 * read what it printed. The examples are documentation; this keeps them working.
 */
async function runExample(file: string, args: string[], codeFor: () => string) {
  const child = spawn(process.execPath, ["--import", "tsx", file, ...args], {
    env: { PATH: process.env.PATH },
    stdio: ["pipe", "pipe", "pipe"],
  });
  let out = "";
  let typed = false;
  child.stdout.on("data", (d: Buffer) => {
    out += d.toString();
    if (!typed && /enter the \d+-digit code: $/.test(out)) {
      typed = true;
      child.stdin.end(`${codeFor()}\n`);
    }
  });
  child.stderr.on("data", (d: Buffer) => (out += d.toString()));
  const timer = setTimeout(() => child.kill("SIGKILL"), 45_000);
  const code = await new Promise<number | null>((resolve) => child.once("exit", resolve));
  clearTimeout(timer);
  return { code, out };
}

describe("examples/ against a live server", () => {
  let s: RunningApp;
  beforeAll(async () => {
    s = await startApp();
  });
  afterAll(() => s?.close());

  it("grpc-js-caller signs in over gRPC with @grpc/grpc-js, rotates and logs out", async () => {
    const phone = uniquePhone();
    const r = await runExample("examples/grpc-js-caller.ts", [`127.0.0.1:${s.port}`, phone], () =>
      s.sms.lastCode(phone),
    );
    expect(r.out).toMatch(new RegExp(`code sent to \\${phone}`));
    expect(r.out).toMatch(new RegExp(`signed in: user \\d+ \\${phone} \\(consumer\\)`));
    expect(r.out).toMatch(/refresh token rotated\nlogged out\n/);
    expect(r.code, r.out).toBe(0);
  });

  it("connect-grpc-caller signs in with createAuthClient over gRPC and verifies the token via JWKS", async () => {
    const phone = uniquePhone();
    const r = await runExample("examples/connect-grpc-caller.ts", [s.baseUrl, phone], () =>
      s.sms.lastCode(phone),
    );
    expect(r.out).toMatch(new RegExp(`token verified: user \\d+ \\${phone} \\(consumer\\), expires 20`));
    expect(r.out).toMatch(/logged out\n/);
    expect(r.code, r.out).toBe(0);
  });

  it("an example reports a wrong code and exits non-zero", async () => {
    const phone = uniquePhone();
    const r = await runExample("examples/connect-grpc-caller.ts", [s.baseUrl, phone], () => "000000");
    expect(r.out).toMatch(/failed: \[unauthenticated\] incorrect code/);
    expect(r.code).toBe(1);
  });
});
