import { readFileSync } from "node:fs";

/** The condition every production-only requirement names, worded once. */
export const IN_PRODUCTION = "when NODE_ENV=production";

/**
 * Reads environment variables for the module readers (`src/<module>/config.ts`) and collects their problems
 * instead of throwing at the first, so all are reported at once, each naming its variable.
 */
export class EnvReader {
  readonly problems: string[] = [];
  /** Every variable asked for so far, so deploy files can be checked against what the readers know. */
  readonly names = new Set<string>(["NODE_ENV"]);
  /** `NODE_ENV=production` turns on the start-up checks each module reader makes. */
  readonly production: boolean;

  constructor(readonly env: Readonly<Record<string, string | undefined>>) {
    this.production = env.NODE_ENV === "production";
  }

  string(name: string, fallback: string): string {
    return this.optional(name) ?? fallback;
  }

  /** Unset and empty both mean "not given": an empty line in a .env file is not a value. */
  optional(name: string): string | undefined {
    this.names.add(name);
    const v = this.env[name]?.trim();
    return v === undefined || v === "" ? undefined : v;
  }

  int(name: string, fallback: number, min: number, max: number): number {
    const raw = this.optional(name);
    if (raw === undefined) return fallback;
    if (!/^\d+$/.test(raw)) {
      this.problems.push(`${name} must be a whole number, got "${raw}"`);
      return fallback;
    }
    const n = Number(raw);
    if (n < min || n > max) {
      this.problems.push(`${name} must be between ${min} and ${max}, got ${n}`);
      return fallback;
    }
    return n;
  }

  oneOf<T extends string>(name: string, allowed: readonly T[], fallback: T): T {
    const raw = this.optional(name);
    if (raw === undefined) return fallback;
    if (!(allowed as readonly string[]).includes(raw)) {
      this.problems.push(`${name} must be one of ${allowed.join(", ")}, got "${raw}"`);
      return fallback;
    }
    return raw as T;
  }

  bool(name: string, fallback: boolean): boolean {
    const raw = this.optional(name)?.toLowerCase();
    if (raw === undefined) return fallback;
    if (["true", "1", "yes", "on"].includes(raw)) return true;
    if (["false", "0", "no", "off"].includes(raw)) return false;
    this.problems.push(`${name} must be true or false, got "${raw}"`);
    return fallback;
  }

  /**
   * A secret, from `name` or from the file `${name}_FILE` names (Docker and Kubernetes secrets are mounted as
   * files, which keeps them out of `docker inspect` and the process environment). Both set is refused rather
   * than one silently winning. The file is read once, here at start-up; one trailing newline (what `echo`
   * and editors add) is not part of the secret. `required` says why it must be present, if it must.
   */
  secret(name: string, required?: string): string | undefined {
    const fileVar = `${name}_FILE`;
    const direct = this.optional(name);
    const path = this.optional(fileVar);
    let value = direct;
    if (direct !== undefined && path !== undefined) {
      this.problems.push(`${name} and ${fileVar} are both set: set only one`);
      return undefined;
    }
    if (path !== undefined) {
      try {
        value = readFileSync(path, "utf8").replace(/\r?\n$/, "");
      } catch (err) {
        const why = err instanceof Error && "code" in err ? String(err.code) : String(err);
        this.problems.push(`${fileVar} names a file that cannot be read (${path}: ${why})`);
        return undefined;
      }
      if (value.trim() === "") {
        this.problems.push(`${fileVar} names an empty file (${path})`);
        return undefined;
      }
    }
    if (value === undefined && required !== undefined) {
      this.problems.push(`${name} is required ${required} (or ${fileVar}, a file holding it)`);
    }
    return value;
  }

  require(name: string, why: string): void {
    if (this.optional(name) === undefined) this.problems.push(`${name} is required ${why}`);
  }

  /** Comma-separated items, trimmed, empty ones dropped. */
  list(name: string): string[] {
    return (this.optional(name) ?? "")
      .split(",")
      .map((item) => item.trim())
      .filter((item) => item !== "");
  }
}
