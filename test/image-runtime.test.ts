import { execFileSync } from "node:child_process";
import { mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join, resolve } from "node:path";
import { afterAll, describe, expect, it } from "vitest";
import { imageRuntime } from "../bench/image-runtime.js";

const dir = mkdtempSync(join(tmpdir(), "otp-auth-dockerfile-"));
afterAll(() => rmSync(dir, { recursive: true, force: true }));

function dockerfile(text: string): string {
  const path = join(dir, `Dockerfile.${Math.random().toString(36).slice(2)}`);
  writeFileSync(path, text);
  return path;
}

describe("imageRuntime: what the bench and the runtime test run the service with", () => {
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
    expect(imageRuntime(path)).toEqual({
      nodeOptions: "--max-old-space-size=320 --max-semi-space-size=8",
      cmdFlags: ["--enable-source-maps", "--single-threaded-gc"],
      // NODE_ENV says what the image is for; the bench and the tests set their own.
      env: { MALLOC_ARENA_MAX: "2" },
    });
  });

  it("a single-stage file with nothing set gives nothing", () => {
    expect(imageRuntime(dockerfile('FROM node:20\nCMD ["npm", "start"]\n'))).toEqual({
      nodeOptions: "",
      cmdFlags: [],
      env: {},
    });
  });

  it("the project's Dockerfile: two malloc arenas, and flags node accepts (an unknown V8 flag is fatal)", () => {
    const image = imageRuntime(resolve(import.meta.dirname, "..", "Dockerfile"));
    // README Performance: 3-12 MB less peak RSS per bench row than glibc's default, at the same CPU.
    expect(image.env).toEqual({ MALLOC_ARENA_MAX: "2" });
    expect(image.cmdFlags.length).toBeGreaterThan(0);
    const run = () =>
      execFileSync(process.execPath, [...image.cmdFlags, "-e", ""], {
        env: { PATH: process.env.PATH, ...image.env, NODE_OPTIONS: image.nodeOptions },
        stdio: "pipe",
      });
    expect(run).not.toThrow();
  });
});
