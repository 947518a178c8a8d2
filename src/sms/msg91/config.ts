import type { EnvReader } from "../../env-reader.js";
import { readBaseUrl } from "../base-url.js";
import type { SmsProviderContext } from "../provider.js";
import { MSG91_DEFAULT_API_BASE_URL } from "./msg91.js";

export interface Msg91Config {
  readonly authKey: string;
  readonly templateId: string;
  readonly codeVariable: string;
  readonly apiBaseUrl: string;
  /**
   * MSG91_DLR_SECRET: the last path segment of `/webhooks/msg91/dlr/{secret}`, the URL given to MSG91 for
   * delivery reports (MSG91 signs nothing, so the unguessable URL is the proof). Unset: no route.
   */
  readonly dlrSecret: string | undefined;
}

/** MSG91_*, read when msg91 is the provider or the fallback. */
export function readMsg91Config(r: EnvReader, ctx: SmsProviderContext): Msg91Config {
  const needed = (name: string, why = "", secret = false) => {
    const value = secret ? r.secret(name) : r.optional(name);
    if (value === undefined) r.problems.push(`${name} is required when ${ctx.usedBy}${why}`);
    return value ?? "";
  };
  const codeVariable = r.string("MSG91_OTP_VARIABLE", "otp");
  if (!/^[A-Za-z0-9_]{1,50}$/.test(codeVariable)) {
    r.problems.push(
      `MSG91_OTP_VARIABLE must be a template variable name such as otp or var1, got "${codeVariable}"`,
    );
  }
  const config = {
    authKey: needed("MSG91_AUTH_KEY", "", true),
    templateId: needed("MSG91_TEMPLATE_ID", " (the id of a DLT-approved template in the MSG91 panel)"),
    codeVariable,
    apiBaseUrl: readBaseUrl(r, "MSG91_API_BASE_URL", MSG91_DEFAULT_API_BASE_URL),
    dlrSecret: r.secret("MSG91_DLR_SECRET"),
  };
  if (config.dlrSecret !== undefined && !/^[A-Za-z0-9_-]{32,}$/.test(config.dlrSecret)) {
    r.problems.push("MSG91_DLR_SECRET must be at least 32 URL-safe characters (e.g. `openssl rand -hex 32`)");
  }
  if (r.optional("SMS_TEMPLATE") !== undefined) {
    ctx.warn(
      "SMS_TEMPLATE does not apply to msg91: its text is the DLT template MSG91_TEMPLATE_ID, which must match SMS_TEMPLATE in meaning",
    );
  }
  return config;
}
