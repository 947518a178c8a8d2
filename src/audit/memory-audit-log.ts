import type { AuditEntry, AuditLog } from "../login/ports.js";
import { type AuditRecord, compareIds, fieldsOf, recordOf } from "./record.js";

/**
 * The embedded mode's audit log: the newest `capacity` events in a ring, with Redis-style ids so watchers
 * resume the same way as on Redis. Gone with the process.
 */
export class MemoryAuditLog implements AuditLog {
  readonly #ring: AuditRecord[] = [];
  #lastMs = 0;
  #seq = 0;
  #wake: (() => void) | undefined;
  #woken: Promise<void>;

  constructor(
    private readonly capacity: number,
    private readonly now: () => number = Date.now,
  ) {
    this.#woken = this.#nextWake();
  }

  /** The events held, oldest first (tests). */
  get events(): readonly AuditRecord[] {
    return this.#ring;
  }

  append(entry: AuditEntry): void {
    const ms = Math.max(this.now(), this.#lastMs);
    this.#seq = ms === this.#lastMs ? this.#seq + 1 : 0;
    this.#lastMs = ms;
    this.#ring.push(recordOf(`${ms}-${this.#seq}`, fieldsOf(entry, ms)));
    if (this.#ring.length > this.capacity) this.#ring.splice(0, this.#ring.length - this.capacity);
    const wake = this.#wake;
    this.#woken = this.#nextWake();
    wake?.();
  }

  async *watch(fromId: string, signal: AbortSignal): AsyncIterable<AuditRecord> {
    let last = fromId === "" ? (this.#ring.at(-1)?.id ?? "0-0") : fromId;
    const aborted = new Promise<void>((resolve) => signal.addEventListener("abort", () => resolve()));
    while (!signal.aborted) {
      const woken = this.#woken;
      for (const record of this.#ring.filter((r) => compareIds(r.id, last) > 0)) {
        last = record.id;
        yield record;
      }
      await Promise.race([woken, aborted]);
    }
  }

  #nextWake(): Promise<void> {
    return new Promise((resolve) => {
      this.#wake = resolve;
    });
  }
}
