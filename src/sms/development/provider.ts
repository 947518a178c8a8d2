import type { SmsProvider } from "../provider.js";
import { type DevelopmentConfig, readDevelopmentConfig } from "./config.js";
import { DevelopmentSmsSender } from "./development.js";

export const developmentProvider: SmsProvider<DevelopmentConfig> = {
  name: "development",
  refusedInProduction: "prints codes to the console",
  readConfig: readDevelopmentConfig,
  create: (settings, deps) => new DevelopmentSmsSender(settings.production, deps.print),
};
