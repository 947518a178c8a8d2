import fc from "fast-check";
import { pino } from "pino";
import { describe, expect, it } from "vitest";
import { createLogger } from "../src/log.js";
import { censorNested } from "../src/log-redaction.js";

/** A destination (pino writes one line per call), and its line parsed without the time. */
function capture() {
  const written: string[] = [];
  const line = (): Record<string, unknown> | undefined => {
    if (written[0] === undefined) return undefined;
    // The two loggers write at different instants.
    const { time: _time, ...rest } = JSON.parse(written[0]) as Record<string, unknown>;
    return rest;
  };
  return { stream: { write: (l: string) => void written.push(l) }, line };
}

/** The redaction the service had until 2026-12-03: pino's paths, wildcards included. */
const OLD_PATHS = [
  "otp",
  "code",
  "*.otp",
  "*.code",
  "access_token",
  "refresh_token",
  "accessToken",
  "refreshToken",
  "*.token",
  "authorization",
  "*.authorization",
];

function logged(fields: Record<string, unknown>) {
  const ours = capture();
  const old = capture();
  createLogger({ production: true, level: "info", destination: ours.stream }).info(fields, "line");
  pino(
    { level: "info", base: { service: "otp-auth" }, redact: { paths: OLD_PATHS, censor: "[redacted]" } },
    old.stream,
  ).info(fields, "line");
  return { ours: ours.line(), old: old.line() };
}

const names = fc.constantFrom(
  "otp",
  "code",
  "token",
  "authorization",
  "access_token",
  "refresh_token",
  "accessToken",
  "refreshToken",
  "phone",
  "provider",
  "headers",
  "sms",
  "err",
  "error",
  "detail",
);
const leaf = fc.oneof(fc.string({ maxLength: 8 }), fc.integer(), fc.boolean(), fc.constant(null));
const error = fc
  .record({ message: fc.string({ maxLength: 8 }), code: fc.option(fc.string({ maxLength: 8 })) })
  .map(({ message, code }) =>
    code === null ? new Error(message) : Object.assign(new Error(message), { code }),
  );
const object = fc.dictionary(names, fc.oneof(leaf, fc.dictionary(names, leaf, { maxKeys: 3 })), {
  maxKeys: 4,
});
const fields = fc.dictionary(names, fc.oneof(leaf, object, fc.array(object, { maxLength: 2 }), error), {
  maxKeys: 6,
});

describe("log redaction", () => {
  it("property: a line reads as the old wildcard paths wrote it", () => {
    fc.assert(
      fc.property(fields, (f) => {
        const { ours, old } = logged(f);
        expect(ours).toBeDefined();
        expect(ours).toEqual(old);
      }),
      { numRuns: 2_000 },
    );
  });

  it("censors a code or a token at the top and one level down, and keeps the rest of the line", () => {
    const { ours } = logged({
      otp: "123456",
      refresh_token: "rt",
      sms: { to: "+91******3210", code: "654321" },
      headers: { authorization: "Bearer x", accept: "*/*" },
      session: { token: "t", id: 7 },
      phone: "+91******3210",
    });
    expect(ours).toMatchObject({
      otp: "[redacted]",
      refresh_token: "[redacted]",
      sms: { to: "+91******3210", code: "[redacted]" },
      headers: { authorization: "[redacted]", accept: "*/*" },
      session: { token: "[redacted]", id: 7 },
      phone: "+91******3210",
    });
  });

  it("censors an error's code and keeps its type, message and stack", () => {
    const { ours } = logged({ err: Object.assign(new Error("provider said no"), { code: "123456" }) });
    const err = ours?.err as Record<string, unknown>;
    expect(err).toMatchObject({ type: "Error", message: "provider said no", code: "[redacted]" });
    expect(err.stack).toMatch(/provider said no/);
  });

  it("copies nothing of a line with nothing to hide", () => {
    const line = { phone: "+91******3210", provider: "twilio", receipt: { id: "SM1", status: "queued" } };
    expect(censorNested(line)).toBe(line);
  });
});
