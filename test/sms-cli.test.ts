import { spawn } from "node:child_process";
import { fileURLToPath } from "node:url";
import { afterAll, beforeAll, beforeEach, describe, expect, it } from "vitest";
import { type FakeTwilio, startFakeTwilio } from "./support/fake-twilio.js";

const ROOT = fileURLToPath(new URL("..", import.meta.url));
// Each run starts npm, tsx and the Twilio SDK: ~2.5 s of CPU, many times that on a loaded 2-core machine.
const RUN_LIMIT_MS = 100_000;

interface Run {
  readonly code: number | null;
  readonly stdout: string;
  readonly stderr: string;
}

/** Runs the CLI as an operator would, with only the given SMS variables in its environment. */
function sendTestOtp(args: readonly string[], env: Record<string, string>): Promise<Run> {
  const base: Record<string, string> = {};
  for (const [k, v] of Object.entries(process.env)) {
    if (v === undefined || /^(SMS_|TWILIO_|MSG91_|WEBOTP_|APP_NAME|OTP_|DEFAULT_COUNTRY)/.test(k)) continue;
    base[k] = v;
  }
  return new Promise((resolve, reject) => {
    const child = spawn("npx", ["tsx", "src/cli/send-test-otp.ts", ...args], {
      cwd: ROOT,
      env: { ...base, NODE_ENV: "test", npm_config_loglevel: "error", ...env },
      stdio: ["ignore", "pipe", "pipe"],
      // Its own process group, so npx, tsx and node can be ended together if the run overstays.
      detached: true,
    });
    const overstay = setTimeout(() => {
      if (child.pid !== undefined) process.kill(-child.pid, "SIGKILL");
    }, RUN_LIMIT_MS);
    let stdout = "";
    let stderr = "";
    child.stdout.on("data", (d: Buffer) => {
      stdout += d.toString();
    });
    child.stderr.on("data", (d: Buffer) => {
      stderr += d.toString();
    });
    child.on("error", reject);
    child.on("close", (code) => {
      clearTimeout(overstay);
      resolve({ code, stdout, stderr });
    });
  });
}

let fake: FakeTwilio;
let twilioEnv: Record<string, string>;
beforeAll(async () => {
  fake = await startFakeTwilio();
  twilioEnv = {
    SMS_PROVIDER: "twilio",
    TWILIO_ACCOUNT_SID: fake.accountSid,
    TWILIO_AUTH_TOKEN: fake.authToken,
    TWILIO_PHONE_NUMBER: "+15005550006",
    TWILIO_API_BASE_URL: fake.baseUrl,
    // Not under test here; a loaded machine must not turn a slow start into a provider timeout.
    SMS_TIMEOUT_MS: "30000",
  };
});
afterAll(async () => {
  await fake.close();
});
beforeEach(() => {
  fake.verifyOnly(undefined);
});

describe("npm run send-test-otp", { timeout: RUN_LIMIT_MS + 10_000 }, () => {
  it("sends through Twilio, prints the message SID, exits 0 and prints neither token nor code", async () => {
    const run = await sendTestOtp(["+15005550006"], twilioEnv);
    const sent = fake.messages.at(-1);
    expect(run.code, run.stderr).toBe(0);
    expect(sent?.to).toBe("+15005550006");
    expect(run.stdout).toContain(`message id ${sent?.sid}`);
    const code = sent?.body.match(/^(\d{6}) is your IndoStar Naturals code/)?.[1];
    expect(code).toBeDefined();
    const output = run.stdout + run.stderr;
    expect(output).not.toContain(fake.authToken);
    expect(output).not.toContain(String(code));
  });

  it("exits 1 with a clear message for Twilio's magic invalid number", async () => {
    const run = await sendTestOtp(["+15005550001"], twilioEnv);
    expect(run.code).toBe(1);
    expect(run.stderr).toMatch(/NOT SENT \(invalid_number\): This phone number is not valid/);
    expect(run.stderr).toMatch(/21211/);
    expect(run.stdout + run.stderr).not.toContain(fake.authToken);
  });

  it("tells the operator to verify the number on a trial account", async () => {
    fake.verifyOnly(["+15005550006"]);
    const run = await sendTestOtp(["+919876543210"], twilioEnv);
    expect(run.code).toBe(1);
    expect(run.stderr).toMatch(/21608.*trial account.*[Vv]erify this number/);
  });

  it("points at the SID and token when Twilio refuses them, without printing the token", async () => {
    const wrong = "0badc0de0badc0de0badc0de0badc0de";
    const run = await sendTestOtp(["+919876543210"], { ...twilioEnv, TWILIO_AUTH_TOKEN: wrong });
    expect(run.code).toBe(1);
    expect(run.stderr).toMatch(/20003.*check TWILIO_ACCOUNT_SID and TWILIO_AUTH_TOKEN/);
    expect(run.stdout + run.stderr).not.toContain(wrong);
  });

  it("exits 1 naming each configuration problem", async () => {
    const { TWILIO_AUTH_TOKEN: _, ...withoutToken } = twilioEnv;
    const run = await sendTestOtp(["+919876543210"], withoutToken);
    expect(run.code).toBe(1);
    expect(run.stderr).toMatch(/TWILIO_AUTH_TOKEN is required when SMS_PROVIDER=twilio/);
  });

  it("with the development provider, reads a local number in DEFAULT_COUNTRY and prints the code", async () => {
    const run = await sendTestOtp(["98765 43210"], { SMS_PROVIDER: "development", DEFAULT_COUNTRY: "IN" });
    expect(run.code, run.stderr).toBe(0);
    expect(run.stdout).toMatch(/OTP for \+919876543210: \d{6}\n/);
    expect(run.stdout).toMatch(/sent by development, message id dev-1/);
  });
});
