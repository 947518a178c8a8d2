import type { EnvReader } from "../env-reader.js";
import type { SmsSender } from "../login/ports.js";

/** What a provider's reader is told about how it is used. */
export interface SmsProviderContext {
  /**
   * Why its variables are needed, for "X is required when …" problems: `SMS_PROVIDER=<name>`,
   * `SMS_FALLBACK_PROVIDER=<name>`, or both joined by "and".
   */
  readonly usedBy: string;
  /** Records something usable but worth an operator's look; createSmsSender logs it. */
  warn(message: string): void;
}

/** What every provider's sender is built with, whatever the provider. */
export interface SmsProviderDeps {
  /** How long one message gets (retries included) before the provider counts as down: SMS_TIMEOUT_MS. */
  readonly timeoutMs: number;
  /** Where a provider that writes to the console writes (tests capture it). */
  readonly print?: ((line: string) => void) | undefined;
}

/**
 * One SMS provider, as its own folder under src/sms/ exports it and src/sms/registry.ts lists it: the reader
 * of its own variables (pushing one problem per missing or invalid variable, named, into the reader) and the
 * constructor of its sender. Nothing outside its folder knows its variables or its settings' shape.
 *
 * Methods, not function-typed properties: their parameters are checked bivariantly, which is what lets
 * providers with different settings share one `SmsProvider<unknown>` list. Each `settings` is only ever
 * handed back to the provider whose `readConfig` returned it (see `ConfiguredSmsProvider`).
 */
export interface SmsProvider<Settings> {
  /** The value of SMS_PROVIDER / SMS_FALLBACK_PROVIDER that selects it. */
  readonly name: string;
  /** Why it may not run when NODE_ENV=production, if it may not (worded to follow "SMS_PROVIDER=<name> "). */
  readonly refusedInProduction?: string;
  readConfig(r: EnvReader, ctx: SmsProviderContext): Settings;
  create(settings: Settings, deps: SmsProviderDeps): SmsSender;
  /** Fields for the start-up log line; never a secret. */
  describe?(settings: Settings): Record<string, string>;
}
