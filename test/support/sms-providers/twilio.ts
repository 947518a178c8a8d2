import { startFakeTwilio } from "../fake-twilio.js";
import type { ProviderHarness } from "../sms-provider-harness.js";

export default async function start(): Promise<ProviderHarness> {
  const twilio = await startFakeTwilio();
  return {
    env: {
      TWILIO_ACCOUNT_SID: twilio.accountSid,
      TWILIO_AUTH_TOKEN: twilio.authToken,
      TWILIO_MESSAGING_SERVICE_SID: `MG${"c".repeat(32)}`,
      TWILIO_API_BASE_URL: twilio.baseUrl,
    },
    delivered: (to) => twilio.messages.findLast((m) => m.to === to)?.body.split(" ")[0],
    close: () => twilio.close(),
  };
}
