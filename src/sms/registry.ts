import { developmentProvider } from "./development/provider.js";
import { msg91Provider } from "./msg91/provider.js";
import type { SmsProvider } from "./provider.js";
import { twilioProvider } from "./twilio/provider.js";

/**
 * Every SMS provider, one line each, in the order SMS_PROVIDER's allowed values are listed. The first is the
 * default when SMS_PROVIDER is unset. Configuration, the factory and the sender contract suite iterate over
 * this list and never name a provider: adding one is its folder plus a line here.
 */
export const SMS_PROVIDERS: readonly SmsProvider<unknown>[] = [
  developmentProvider,
  twilioProvider,
  msg91Provider,
];
