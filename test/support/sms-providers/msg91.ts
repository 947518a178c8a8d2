import { startFakeMsg91 } from "../fake-msg91.js";
import type { ProviderHarness } from "../sms-provider-harness.js";

export default async function start(): Promise<ProviderHarness> {
  const msg91 = await startFakeMsg91();
  return {
    env: {
      MSG91_AUTH_KEY: msg91.authKey,
      MSG91_TEMPLATE_ID: msg91.templateId,
      MSG91_API_BASE_URL: msg91.baseUrl,
    },
    delivered: (to) => msg91.messages.findLast((m) => `+${m.mobiles}` === to)?.variables.otp,
    close: () => msg91.close(),
  };
}
