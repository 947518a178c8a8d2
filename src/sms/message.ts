import { measureSms } from "./segments.js";

/**
 * The OTP text. The code comes first so it shows in a lock-screen preview and OS autofill finds it; the
 * warning not to share it is the cheapest defence against "read me the code" fraud. With a GSM-7 app name of
 * up to 40 characters and a WebOTP domain of up to 30 it fits one segment even at the longest code and TTL.
 */
export const DEFAULT_OTP_TEMPLATE =
  "{code} is your {app} code. It expires in {minutes} minutes. Don't share it.";

export const OTP_PLACEHOLDERS = ["code", "minutes", "app"] as const;

export interface OtpMessageValues {
  readonly code: string;
  readonly minutes: number;
  readonly app: string;
  /** Appends the WebOTP line (`@domain #code`) so browsers on that domain can fill the code in. */
  readonly webOtpDomain?: string | undefined;
}

const PLACEHOLDER = /\{([A-Za-z_]+)\}/g;

export function renderOtpMessage(template: string, values: OtpMessageValues): string {
  const byName: Record<string, string> = {
    code: values.code,
    minutes: String(values.minutes),
    app: values.app,
  };
  // A replacer function, so "$&" or "$1" in an app name is not read as a replacement pattern.
  const text = template.replace(PLACEHOLDER, (whole, name: string) => byName[name] ?? whole);
  // The WebOTP format requires this to be the last line, after a blank one.
  return values.webOtpDomain ? `${text}\n\n@${values.webOtpDomain} #${values.code}` : text;
}

/** The longest values a rendering can take: OTP_LENGTH is at most 10 and OTP_TTL_SECONDS at most a day. */
export const WORST_CASE_CODE = "0".repeat(10);
export const WORST_CASE_MINUTES = 1440;

export interface TemplateCheck {
  /** The template cannot be used. */
  readonly problems: string[];
  /** It can be used but will cost more or arrive worse. */
  readonly warnings: string[];
}

/** Checks a template once at start-up, against the worst case, so no message is ever found too long in use. */
export function checkOtpTemplate(
  template: string,
  opts: { readonly app: string; readonly webOtpDomain?: string | undefined; readonly variable: string },
): TemplateCheck {
  const problems: string[] = [];
  const warnings: string[] = [];
  if (!template.includes("{code}")) problems.push(`${opts.variable} must contain {code}`);
  const known: readonly string[] = OTP_PLACEHOLDERS;
  const unknown = [...template.matchAll(PLACEHOLDER)]
    .map((m) => m[1] ?? "")
    .filter((name) => !known.includes(name));
  if (unknown.length > 0) {
    problems.push(
      `${opts.variable} has unknown placeholders ${[...new Set(unknown)].map((n) => `{${n}}`).join(", ")}; ` +
        `only {code}, {minutes} and {app} are replaced`,
    );
  }
  const worst = renderOtpMessage(template, {
    code: WORST_CASE_CODE,
    minutes: WORST_CASE_MINUTES,
    app: opts.app,
    webOtpDomain: opts.webOtpDomain,
  });
  const size = measureSms(worst);
  if (size.segments > 1) {
    warnings.push(
      `${opts.variable} can take ${size.segments} SMS segments (${size.units} ${size.encoding} units at the ` +
        `longest code and TTL${opts.webOtpDomain ? ", with the WebOTP line" : ""}; one segment holds ` +
        `${size.encoding === "GSM-7" ? 160 : 70})` +
        (size.encoding === "UCS-2" ? ": it has characters outside GSM-7 (APP_NAME or the template)" : ""),
    );
  }
  return { problems, warnings };
}
