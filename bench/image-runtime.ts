import { readFileSync } from "node:fs";

/** Set by the image for what it is, not for how the process runs: the bench and the tests set their own. */
const NOT_PROCESS_SHAPING = new Set(["NODE_ENV", "NODE_OPTIONS"]);

/**
 * How the production image runs Node: its `ENV NODE_OPTIONS`, the options of its `CMD ["node", …]`, and the other
 * variables its runtime stage sets for the process (`MALLOC_ARENA_MAX`), read from the Dockerfile so
 * that what is measured (the bench) and what is tested (the runtime-image test) cannot drift from what is deployed.
 */
export function imageRuntime(dockerfile: string): {
  nodeOptions: string;
  cmdFlags: string[];
  env: Record<string, string>;
} {
  const text = readFileSync(dockerfile, "utf8");
  // The last stage is the image; earlier ones build it.
  const runtime = text.slice(Math.max(0, ...[...text.matchAll(/^FROM /gm)].map((m) => m.index ?? 0)));
  // ENV takes the value bare or in double quotes (needed for more than one flag).
  const envOf = (m: RegExpMatchArray) => [m[1] ?? "", (m[2] ?? "").replace(/^"(.*)"$/, "$1")] as const;
  const settings = [...runtime.matchAll(/^ENV ([A-Z_][A-Z0-9_]*)=(.*)$/gm)].map(envOf);
  const nodeOptions = settings.find(([name]) => name === "NODE_OPTIONS")?.[1] ?? "";
  const env = Object.fromEntries(settings.filter(([name]) => !NOT_PROCESS_SHAPING.has(name)));
  const cmd = /^CMD (\[.*\])$/m.exec(runtime)?.[1];
  const argv = cmd ? (JSON.parse(cmd) as string[]) : [];
  const cmdFlags = argv[0] === "node" ? argv.slice(1).filter((a) => a.startsWith("--")) : [];
  return { nodeOptions, cmdFlags, env };
}
