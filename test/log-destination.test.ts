import { type ChildProcess, spawn } from "node:child_process";
import { once } from "node:events";
import { resolve } from "node:path";
import { pathToFileURL } from "node:url";
import { afterEach, describe, expect, it } from "vitest";
import {
  createLogger,
  LOG_BUFFER_MAX_BYTES,
  LOG_DROP_REPORT_MS,
  LOG_FLUSH_MS,
  terminalDestination,
} from "../src/log.js";
import { made } from "./support/fake-pretty.js";
import { until } from "./support/wait.js";

const fake = pathToFileURL(resolve(import.meta.dirname, "support/fake-pretty.ts")).href;

describe("where logs go", () => {
  it("a terminal outside production gets pino-pretty", async () => {
    const destination = await terminalDestination({ production: false, isTTY: true, module: fake });
    expect(destination).toBeDefined();
    const log = createLogger({ production: false, ...(destination ? { destination } : {}) });
    log.info("hello");
    expect(made.at(-1)?.lines.join("")).toMatch(/"msg":"hello"/);
    expect(made.at(-1)?.opts).toMatchObject({ colorize: true });
  });

  it("JSON lines otherwise: in production, when stdout is not a terminal, or without pino-pretty", async () => {
    expect(await terminalDestination({ production: true, isTTY: true, module: fake })).toBeUndefined();
    expect(await terminalDestination({ production: false, isTTY: false, module: fake })).toBeUndefined();
    expect(await terminalDestination({ production: false, isTTY: undefined, module: fake })).toBeUndefined();
    const missing = pathToFileURL(resolve(import.meta.dirname, "support/no-such-module.js")).href;
    expect(await terminalDestination({ production: false, isTTY: true, module: missing })).toBeUndefined();
  });
});

describe("stdout in production: lines are gathered and written in batches", () => {
  let child: ChildProcess | undefined;
  afterEach(() => {
    child?.kill("SIGKILL");
  });
  const spawnChild = (mode: "stay" | "exit" | "flood", stderr: "inherit" | "pipe" = "inherit") => {
    child = spawn(process.execPath, ["--import", "tsx", "test/support/log-child.ts", mode], {
      stdio: ["ignore", "pipe", stderr],
    });
    return child;
  };
  /** The child, and the stdout lines it has written so far. */
  const start = (mode: "stay" | "exit") => {
    const c = spawnChild(mode);
    const lines: string[] = [];
    let rest = "";
    c.stdout?.on("data", (d: Buffer) => {
      const parts = (rest + d.toString()).split("\n");
      rest = parts.pop() ?? "";
      lines.push(...parts);
    });
    return { child: c, lines };
  };

  it(`a lone line arrives by the timed flush (every ${LOG_FLUSH_MS} ms) while the child runs`, async () => {
    const { child: c, lines } = start("stay");
    // The child stays up for a minute: the line can only come from the timed flush, not the one at exit.
    await until(() => lines.length > 0, { what: "the lone line on stdout", timeoutMs: 20_000 });
    expect(c.exitCode).toBeNull();
    expect(JSON.parse(lines[0] ?? "")).toMatchObject({ msg: "lone line", n: 1, service: "otp-auth" });
  });

  it("lines still gathered when the process exits are written before it ends", async () => {
    const { child: c, lines } = start("exit");
    // "close", not "exit": stdout has ended by then, so every line the child wrote has arrived.
    const [code] = await once(c, "close");
    expect(code).toBe(0);
    expect(lines.map((l) => (JSON.parse(l) as { n: number }).n)).toEqual([1, 2, 3]);
  });

  it(`past ${LOG_BUFFER_MAX_BYTES} bytes waiting on stdout, lines are dropped and counted`, async () => {
    const c = spawnChild("flood", "pipe");
    // Nobody reads the child's stdout: once the pipe is full, its lines can only wait or be dropped.
    c.stdout?.pause();
    let err = "";
    c.stderr?.on("data", (d: Buffer) => (err += d.toString()));
    await until(() => err.includes("flooded"), {
      what: "the child to log twice the bound",
      timeoutMs: 60_000,
    });
    const report = await until(() => /stdout is not keeping up; (\d+) log line\(s\) dropped/.exec(err), {
      what: `a report of dropped lines (one per ${LOG_DROP_REPORT_MS} ms at most)`,
    });
    expect(Number(report[1])).toBeGreaterThan(0);
    expect(c.exitCode).toBeNull();
  }, 90_000);
});
