import type { SmsProvider } from "../provider.js";
import { type Msg91Config, readMsg91Config } from "./config.js";
import { Msg91SmsSender } from "./msg91.js";

export const msg91Provider: SmsProvider<Msg91Config> = {
  name: "msg91",
  readConfig: readMsg91Config,
  create: (settings, deps) => new Msg91SmsSender({ ...settings, timeoutMs: deps.timeoutMs }),
};
