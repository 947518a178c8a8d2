import { execFile } from "node:child_process";
import { readFileSync } from "node:fs";
import { resolve } from "node:path";
import { promisify } from "node:util";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { type MainProcess, startMain } from "./support/main-process.js";

const run = promisify(execFile);
const root = resolve(import.meta.dirname, "..");

interface Example {
  /** The command as the README prints it (continuation lines joined). */
  readonly command: string;
  /** The `# ` lines right under it: the output it promises. */
  readonly expected: string[];
}

/** Every command in a ```sh block that calls `curl` or `buf curl`, in README order. */
function readmeExamples(markdown: string): Example[] {
  const examples: Example[] = [];
  for (const [, block = ""] of markdown.matchAll(/```sh\n([\s\S]*?)```/g)) {
    if (!/\bcurl\b/.test(block)) continue;
    const lines = block.split("\n");
    for (let i = 0; i < lines.length; i++) {
      const line = lines[i] ?? "";
      if (line.trim() === "" || line.startsWith("#")) continue;
      let command = line;
      while (command.endsWith("\\") && i + 1 < lines.length)
        command = `${command.slice(0, -1)} ${lines[++i]}`;
      const expected: string[] = [];
      while ((lines[i + 1] ?? "").startsWith("#")) expected.push((lines[++i] ?? "").replace(/^#\s?/, ""));
      examples.push({ command, expected });
    }
  }
  return examples;
}

/** `actual` has the shape `expected` shows: same keys, same values, and "abc…" matches any string starting "abc". */
function expectShape(actual: unknown, expected: unknown, path = "$"): void {
  if (typeof expected === "string" && expected.includes("…")) {
    expect(typeof actual, path).toBe("string");
    expect(String(actual).startsWith(expected.slice(0, expected.indexOf("…"))), `${path}: ${actual}`).toBe(
      true,
    );
  } else if (Array.isArray(expected)) {
    expect(Array.isArray(actual), path).toBe(true);
    const a = actual as unknown[];
    expect(a.length, path).toBe(expected.length);
    for (const [i, e] of expected.entries()) expectShape(a[i], e, `${path}[${i}]`);
  } else if (typeof expected === "object" && expected !== null) {
    expect(typeof actual === "object" && actual !== null, path).toBe(true);
    const a = actual as Record<string, unknown>;
    expect(Object.keys(a).sort(), path).toEqual(Object.keys(expected).sort());
    for (const [k, v] of Object.entries(expected)) expectShape(a[k], v, `${path}.${k}`);
  } else {
    expect(actual, path).toEqual(expected);
  }
}

const README_PHONE = "+919876543210";

describe("README: every curl and buf curl command runs and answers what the README shows", () => {
  const examples = readmeExamples(readFileSync(resolve(root, "README.md"), "utf8"));
  let s: MainProcess;
  let baseUrl: string;
  beforeAll(async () => {
    // The service as `npm start` runs it with nothing configured: in-memory store (so the README's first user
    // really is id 1), the development SMS provider, and every default limit. A reader following the README
    // on their own machine meets no limit the README does not show; neither may this test.
    s = startMain();
    baseUrl = `http://127.0.0.1:${await s.port()}`;
  }, 30_000);
  afterAll(() => s?.stop());

  it("finds the README's commands", () => {
    expect(examples.length).toBeGreaterThanOrEqual(8);
    expect(examples.some((e) => e.command.startsWith("npx buf curl"))).toBe(true);
  });

  it("runs them in order, with the real code and refresh tokens put in", async () => {
    let refreshToken: string | undefined;
    let verificationId: string | undefined;
    let accessToken: string | undefined;
    for (const { command, expected } of examples) {
      let cmd = command.replaceAll("http://localhost:8000", baseUrl);
      if (cmd.includes('"otp":"123456"')) cmd = cmd.replace("123456", await s.lastCode(README_PHONE));
      if (cmd.includes("1.…")) {
        expect(refreshToken, `no refresh token seen before: ${command}`).toBeDefined();
        cmd = cmd.replaceAll("1.…", refreshToken ?? "");
      }
      if (cmd.includes("VE…")) {
        expect(verificationId, `no verification id seen before: ${command}`).toBeDefined();
        cmd = cmd.replaceAll("VE…", verificationId ?? "");
      }
      if (cmd.includes("Bearer eyJ…")) {
        expect(accessToken, `no access token seen before: ${command}`).toBeDefined();
        cmd = cmd.replaceAll("Bearer eyJ…", `Bearer ${accessToken ?? ""}`);
      }
      const { stdout } = await run("bash", ["-c", cmd], {
        cwd: root,
        env: { PATH: process.env.PATH },
        timeout: 60_000,
      }).catch((err: { stdout?: string; stderr?: string; code?: number }) => {
        throw new Error(
          `README command failed (${err.code}): ${command}\n${err.stderr ?? ""}${err.stdout ?? ""}`,
        );
      });

      const first = expected[0] ?? "";
      if (first.startsWith("{") || first.startsWith("[")) {
        const body = JSON.parse(stdout) as Record<string, unknown>;
        expectShape(body, JSON.parse(expected.join("\n")), command);
        if (typeof body.refresh_token === "string") refreshToken = body.refresh_token;
        if (typeof body.verification_id === "string") verificationId = body.verification_id;
        if (typeof body.access_token === "string") accessToken = body.access_token;
      } else {
        // Header-style output: each promised line appears (header names are case-insensitive).
        const got = stdout
          .toLowerCase()
          .split(/\r?\n/)
          .map((l) => l.trim());
        for (const line of expected) expect(got, command).toContain(line.toLowerCase().trim());
      }
    }
  });
});
