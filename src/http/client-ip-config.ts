import type { EnvReader } from "../env-reader.js";
import { isIpOrCidr } from "./client-ip.js";

/** TRUSTED_PROXIES: IPs and CIDRs of proxies whose X-Forwarded-For is believed. */
export function readTrustedProxies(r: EnvReader): string[] {
  const entries = r.list("TRUSTED_PROXIES");
  for (const e of entries) {
    if (!isIpOrCidr(e)) {
      r.problems.push(`TRUSTED_PROXIES must list IP addresses or CIDRs such as 10.0.0.0/8; got "${e}"`);
    }
  }
  return entries;
}
