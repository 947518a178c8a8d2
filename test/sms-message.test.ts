import fc from "fast-check";
import { describe, expect, it } from "vitest";
import { EnvReader } from "../src/env-reader.js";
import { readSmsConfig } from "../src/sms/config.js";
import { checkOtpTemplate, DEFAULT_OTP_TEMPLATE, renderOtpMessage } from "../src/sms/message.js";
import { isGsm7, measureSms } from "../src/sms/segments.js";

const GSM7_TEXT_CHARS = [
  ..."@£$¥èéùìòÇØøÅåΔ_ΦΓΛΩΠΨΣΘΞÆæßÉ !\"#¤%&'()*+,-./0123456789:;<=>?¡ABCDEFGHIJKLMNOPQRSTUVWXYZÄÖÑÜ§¿abcdefghijklmnopqrstuvwxyzäöñüà",
];
const gsm7Name = (maxLength: number) =>
  fc
    .array(fc.constantFrom(...GSM7_TEXT_CHARS), { minLength: 1, maxLength })
    .map((cs) => cs.join("").trim())
    .filter((s) => s !== "");
const code = fc.integer({ min: 4, max: 10 }).chain((n) => fc.stringMatching(new RegExp(`^\\d{${n}}$`)));
const minutes = fc.integer({ min: 1, max: 1440 });
const label = fc.stringMatching(/^[a-z0-9]([a-z0-9-]{0,8}[a-z0-9])?$/);
const domain = (maxLength: number) =>
  fc
    .array(label, { minLength: 1, maxLength: 4 })
    .map((ls) => ls.join("."))
    .filter((d) => d.length <= maxLength);

describe("renderOtpMessage", () => {
  it("fills every placeholder, as often as it appears", () => {
    expect(
      renderOtpMessage("{code} {app} {minutes} {code}", { code: "123456", minutes: 10, app: "Shop" }),
    ).toBe("123456 Shop 10 123456");
  });

  it("appends the WebOTP line last, after a blank line", () => {
    const text = renderOtpMessage(DEFAULT_OTP_TEMPLATE, {
      code: "123456",
      minutes: 10,
      app: "IndoStar Naturals",
      webOtpDomain: "auth.example.com",
    });
    expect(text).toBe(
      "123456 is your IndoStar Naturals code. It expires in 10 minutes. Don't share it.\n\n@auth.example.com #123456",
    );
  });

  it("takes an app name literally, replacement patterns and braces included", () => {
    expect(renderOtpMessage("{app}: {code}", { code: "1234", minutes: 1, app: "$& $1 $' {code}" })).toBe(
      "$& $1 $' {code}: 1234",
    );
  });

  it("property: the rendered text always contains the code", () => {
    const template = fc
      .tuple(fc.string(), fc.string())
      .map(([a, b]) => `${a}{code}${b}`)
      .filter((t) => checkOtpTemplate(t, { app: "x", variable: "T" }).problems.length === 0);
    fc.assert(
      fc.property(
        template,
        code,
        minutes,
        fc.string(),
        fc.option(domain(60), { nil: undefined }),
        (t, c, m, app, d) => {
          const text = renderOtpMessage(t, { code: c, minutes: m, app, webOtpDomain: d });
          expect(text).toContain(c);
          if (d) expect(text.endsWith(`\n\n@${d} #${c}`)).toBe(true);
        },
      ),
    );
  });

  it("property: the default template fits one GSM-7 segment for app names up to 40 and WebOTP domains up to 30", () => {
    fc.assert(
      fc.property(gsm7Name(40), code, minutes, fc.option(domain(30), { nil: undefined }), (app, c, m, d) => {
        const size = measureSms(
          renderOtpMessage(DEFAULT_OTP_TEMPLATE, { code: c, minutes: m, app, webOtpDomain: d }),
        );
        expect(size).toMatchObject({ encoding: "GSM-7", segments: 1 });
      }),
    );
  });

  it("property: for any app name, the configuration warns unless the default text fits one segment", () => {
    fc.assert(
      fc.property(
        fc.oneof(gsm7Name(200), fc.string({ minLength: 1, maxLength: 200, unit: "grapheme" })),
        code,
        minutes,
        (app, c, m) => {
          const r = new EnvReader({ APP_NAME: app });
          const cfg = readSmsConfig(r);
          expect(r.problems).toEqual([]);
          const size = measureSms(renderOtpMessage(cfg.template, { code: c, minutes: m, app }));
          if (size.segments > 1) expect(cfg.warnings.length).toBeGreaterThan(0);
        },
      ),
    );
  });
});

describe("checkOtpTemplate", () => {
  it("requires {code}", () => {
    expect(
      checkOtpTemplate("Your code expires in {minutes} minutes", { app: "A", variable: "SMS_TEMPLATE" })
        .problems,
    ).toEqual(["SMS_TEMPLATE must contain {code}"]);
  });

  it("refuses unknown placeholders, which would be sent as typed", () => {
    const { problems } = checkOtpTemplate("{code} for {name}", { app: "A", variable: "SMS_TEMPLATE" });
    expect(problems).toEqual([expect.stringMatching(/SMS_TEMPLATE has unknown placeholders \{name\}/)]);
  });

  it("warns when the longest rendering takes more than one segment", () => {
    const { problems, warnings } = checkOtpTemplate(`{code} ${"x".repeat(150)}`, {
      app: "A",
      variable: "SMS_TEMPLATE",
    });
    expect(problems).toEqual([]);
    expect(warnings).toEqual([expect.stringMatching(/SMS_TEMPLATE can take 2 SMS segments/)]);
  });

  it("warns when a character outside GSM-7 makes it UCS-2", () => {
    const { warnings } = checkOtpTemplate(
      "{code} आपका कोड है, {app} के लिए। यह {minutes} मिनट में समाप्त होगा, किसी से साझा न करें",
      {
        app: "A",
        variable: "SMS_TEMPLATE",
      },
    );
    expect(warnings).toEqual([expect.stringMatching(/UCS-2.*outside GSM-7/)]);
  });
});

describe("measureSms", () => {
  it("counts GSM-7 septets, extension characters as two", () => {
    expect(measureSms("a".repeat(160))).toEqual({ encoding: "GSM-7", units: 160, segments: 1 });
    expect(measureSms("a".repeat(161))).toEqual({ encoding: "GSM-7", units: 161, segments: 2 });
    expect(measureSms(`${"a".repeat(159)}€`)).toEqual({ encoding: "GSM-7", units: 161, segments: 2 });
    expect(measureSms("a".repeat(307))).toMatchObject({ segments: 3 });
  });

  it("falls back to UCS-2 for anything outside GSM-7", () => {
    expect(isGsm7("₹100")).toBe(false);
    expect(measureSms("₹".repeat(70))).toEqual({ encoding: "UCS-2", units: 70, segments: 1 });
    expect(measureSms("₹".repeat(71))).toEqual({ encoding: "UCS-2", units: 71, segments: 2 });
  });
});
