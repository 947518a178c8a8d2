import type { SmsSenderDeps } from "../../src/sms/factory.js";

/**
 * What the sender contract suite needs to run one registered SMS provider against a local fake of its API.
 * Each provider has one, in `test/support/sms-providers/<name>.ts`, default-exporting `start`.
 */
export interface ProviderHarness {
  /** The provider's own variables (SMS_PROVIDER is set by the suite). */
  readonly env: Readonly<Record<string, string>>;
  readonly deps?: SmsSenderDeps;
  /** The code the phone at `to` last received. */
  delivered(to: string): string | undefined;
  close(): Promise<void>;
}

export type StartHarness = () => Promise<ProviderHarness>;

/** Loads the harness of the provider registered as `name`; a provider without one fails the suite. */
export async function startHarness(name: string): Promise<ProviderHarness> {
  let mod: { default?: unknown };
  // Left to the runtime resolver (@vite-ignore): Vite's own glob for variable imports finds no .js sources.
  try {
    mod = (await import(/* @vite-ignore */ `./sms-providers/${name}.js`)) as { default?: unknown };
  } catch (err) {
    throw new Error(
      `SMS provider "${name}" has no contract harness: add test/support/sms-providers/${name}.ts`,
      { cause: err },
    );
  }
  if (typeof mod.default !== "function") {
    throw new Error(`test/support/sms-providers/${name}.ts must default-export its start function`);
  }
  return (mod.default as StartHarness)();
}
