import { createRequire } from "node:module";

type Twilio = typeof import("twilio");

const require = createRequire(import.meta.url);
let sdk: Twilio | undefined;

/**
 * The Twilio SDK, loaded on first use. It is hundreds of CommonJS files (~0.5 s to load), and a service that
 * sends through another provider, or a developer's `npm start`, should not wait for it.
 */
export function twilioSdk(): Twilio {
  sdk ??= require("twilio") as Twilio;
  return sdk;
}
