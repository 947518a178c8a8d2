import type { ProviderHarness } from "../sms-provider-harness.js";

export default async function start(): Promise<ProviderHarness> {
  const lines: string[] = [];
  return {
    env: {},
    deps: { print: (line) => lines.push(line) },
    delivered: (to) =>
      lines
        .findLast((l) => l.includes(`OTP for ${to}:`))
        ?.split(": ")
        .at(-1),
    close: async () => {},
  };
}
