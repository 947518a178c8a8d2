import { existsSync } from "node:fs";

export const CHROMIUM = "/usr/bin/chromium";
/** Debian's chromium, headless, with nothing that reaches beyond 127.0.0.1. */
export const CHROMIUM_ARGS = [
  "--headless",
  "--no-sandbox",
  "--disable-gpu",
  "--disable-background-networking",
  "--disable-quic",
  "--no-first-run",
  "--disable-component-update",
  "--disable-sync",
];

/** Why browser suites cannot run, or undefined. Skipped loudly; under CI=true a missing browser is a failure. */
export function chromiumReason(): string | undefined {
  if (existsSync(CHROMIUM)) return undefined;
  const why = `no ${CHROMIUM}: browser tests are SKIPPED (apt-get install chromium)`;
  if (process.env.CI === "true") throw new Error(`${why} — refusing to skip under CI=true`);
  console.warn(`\n!!! ${why}\n`);
  return why;
}
