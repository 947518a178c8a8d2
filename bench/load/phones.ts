// Valid Indian mobile numbers (libphonenumber's "max" metadata accepts every one): a two-digit prefix from
// this list, then eight digits. Index i names one number; each scenario takes its own block of indexes.
export const PREFIXES = ["98", "99", "97", "96", "95", "94", "93", "91", "90"] as const;
const BLOCK = 100_000_000;

export function phoneAt(i: number): string {
  const prefix = PREFIXES[Math.floor(i / BLOCK) % PREFIXES.length] ?? "98";
  return `+91${prefix}${String(i % BLOCK).padStart(8, "0")}`;
}

/** A distinct client address per request, for limits keyed on a trusted proxy header. */
export function clientIpAt(i: number): string {
  return `10.${(i >>> 16) & 255}.${(i >>> 8) & 255}.${i & 255}`;
}
