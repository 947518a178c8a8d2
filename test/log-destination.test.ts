import { resolve } from "node:path";
import { pathToFileURL } from "node:url";
import { describe, expect, it } from "vitest";
import { createLogger, terminalDestination } from "../src/log.js";
import { made } from "./support/fake-pretty.js";

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
