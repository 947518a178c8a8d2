import { execFileSync } from "node:child_process";
import { mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join, resolve } from "node:path";
import { afterAll, describe, expect, it } from "vitest";
import { imageNodeFlags } from "../bench/image-node-flags.js";

const dir = mkdtempSync(join(tmpdir(), "otp-auth-dockerfile-"));
afterAll(() => rmSync(dir, { recursive: true, force: true }));

function dockerfile(text: string): string {
  const path = join(dir, `Dockerfile.${Math.random().toString(36).slice(2)}`);
  writeFileSync(path, text);
  return path;
}

describe("imageNodeFlags: what the bench and the runtime test run the service with", () => {
  it("reads the runtime stage's NODE_OPTIONS, CMD flags and process settings, not the build stage's", () => {
    const path = dockerfile(`FROM node:20 AS build
ENV NODE_OPTIONS="--max-old-space-size=4096"
ENV MALLOC_ARENA_MAX=8
CMD ["node", "--inspect", "build.js"]

FROM node:20-slim AS runtime
ENV NODE_ENV=production
ENV NODE_OPTIONS="--max-old-space-size=320 --max-semi-space-size=8"
ENV MALLOC_ARENA_MAX=2
HEALTHCHECK --interval=10s \\
  CMD ["node", "-e", "process.exit(0)"]
CMD ["node", "--enable-source-maps", "--single-threaded-gc", "dist/src/main.js"]
`);
    expect(imageNodeFlags(path)).toEqual({
      nodeOptions: "--max-old-space-size=320 --max-semi-space-size=8",
      cmdFlags: ["--enable-source-maps", "--single-threaded-gc"],
      // NODE_ENV says what the image is for; the bench and the tests set their own.
      env: { MALLOC_ARENA_MAX: "2" },
    });
  });

  it("a single-stage file with nothing set gives nothing", () => {
    expect(imageNodeFlags(dockerfile('FROM node:20\nCMD ["npm", "start"]\n'))).toEqual({
      nodeOptions: "",
      cmdFlags: [],
      env: {},
    });
  });

  it("the project's Dockerfile: node accepts every flag (an unknown V8 flag is fatal) with its settings", () => {
    const image = imageNodeFlags(resolve(import.meta.dirname, "..", "Dockerfile"));
    expect(image.cmdFlags.length).toBeGreaterThan(0);
    const out = execFileSync(
      process.execPath,
      [...image.cmdFlags, "-p", "process.env.MALLOC_ARENA_MAX ?? 'unset'"],
      { env: { PATH: process.env.PATH, ...image.env, NODE_OPTIONS: image.nodeOptions } },
    );
    expect(out.toString().trim()).toBe(image.env.MALLOC_ARENA_MAX ?? "unset");
  });
});
