import type { DestinationStream } from "pino";

/** Stands in for pino-pretty: what it was given, and every line written to it. */
export const made: { opts: Record<string, unknown>; lines: string[] }[] = [];

export default function pretty(opts: Record<string, unknown>): DestinationStream {
  const lines: string[] = [];
  made.push({ opts, lines });
  return { write: (line: string) => void lines.push(line) };
}
