import type { EnvReader } from "../../env-reader.js";

export interface DevelopmentConfig {
  /** Passed on so the sender itself refuses production too, however it is built. */
  readonly production: boolean;
}

/** The development provider has no variables of its own. */
export function readDevelopmentConfig(r: EnvReader): DevelopmentConfig {
  return { production: r.production };
}
