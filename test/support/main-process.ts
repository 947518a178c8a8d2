import { type ChildProcess, spawn } from "node:child_process";
import { resolve } from "node:path";
import { until } from "./wait.js";

const root = resolve(import.meta.dirname, "../..");

export interface MainProcess {
  readonly child: ChildProcess;
  /** Waits until the output so far matches, and returns it; throws if the process exits first. */
  waitFor(re: RegExp, ms?: number): Promise<string>;
  output(): string;
  /** The listening port, once the start-up line is out. */
  port(ms?: number): Promise<number>;
  /** The last code the development SMS provider printed for this phone. */
  lastCode(phone: string): Promise<string>;
  stop(): Promise<number | null>;
}

/**
 * The service as a person starts it: its own process, nothing in the environment but PATH and what the test
 * passes (HOST and PORT=0 by default), so every default is `npm start`'s. `command` replaces
 * `node --import tsx src/main.ts` (e.g. `npm start` itself).
 */
export function startMain(
  env: Record<string, string> = {},
  command: readonly string[] = [process.execPath, "--import", "tsx", "src/main.ts"],
): MainProcess {
  const [file = process.execPath, ...args] = command;
  const child = spawn(file, args, {
    cwd: root,
    env: { PATH: process.env.PATH, HOST: "127.0.0.1", PORT: "0", ...env },
    stdio: ["ignore", "pipe", "pipe"],
    // Its own process group, so `npm start`'s node child is stopped with it.
    detached: true,
  });
  let out = "";
  child.stdout?.on("data", (d: Buffer) => (out += d.toString()));
  child.stderr?.on("data", (d: Buffer) => (out += d.toString()));
  const waitFor = async (re: RegExp, ms = 20_000) => {
    await until(
      () => {
        if (re.test(out)) return true;
        if (child.exitCode !== null) throw new Error(`exited ${child.exitCode}: ${out}`);
        return false;
      },
      { what: () => `${re} in: ${out}`, timeoutMs: ms, intervalMs: 20 },
    );
    return out;
  };
  const listening = /listening on http:\/\/[^:]+:(\d+)/;
  return {
    child,
    waitFor,
    output: () => out,
    async port(ms) {
      return Number(listening.exec(await waitFor(listening, ms))?.[1]);
    },
    async lastCode(phone) {
      const line = `OTP for \\${phone}: (\\d+)`;
      await waitFor(new RegExp(line));
      return [...out.matchAll(new RegExp(line, "g"))].at(-1)?.[1] ?? "";
    },
    async stop() {
      if (child.exitCode !== null || child.pid === undefined) return child.exitCode;
      const pid = child.pid;
      const exited = new Promise<number | null>((r) => child.once("exit", (code) => r(code)));
      const signal = (s: NodeJS.Signals) => {
        try {
          process.kill(-pid, s);
        } catch {
          // The group is gone already.
        }
      };
      signal("SIGTERM");
      const timer = setTimeout(() => signal("SIGKILL"), 10_000);
      const code = await exited;
      clearTimeout(timer);
      return code;
    },
  };
}
