import type { SmsProvider } from "../provider.js";
import { readTwilioConfig, type TwilioConfig } from "./config.js";
import { TwilioSmsSender } from "./twilio.js";

export const twilioProvider: SmsProvider<TwilioConfig> = {
  name: "twilio",
  readConfig: readTwilioConfig,
  create: (settings, deps) => new TwilioSmsSender({ ...settings, timeoutMs: deps.timeoutMs }),
  describe: (settings) => ({
    twilioSender: settings.messagingServiceSid ? "messaging_service" : "phone_number",
  }),
};
