import { readFileSync } from "node:fs";

/**
 * The Node flags the production image runs with: its `ENV NODE_OPTIONS` and the options of its `CMD ["node", …]`,
 * read from the Dockerfile so that what is measured (the bench) and what is tested (the runtime-image test) cannot
 * drift from what is deployed.
 */
export function imageNodeFlags(dockerfile: string): { nodeOptions: string; cmdFlags: string[] } {
  const text = readFileSync(dockerfile, "utf8");
  // ENV takes the value bare or in double quotes (needed for more than one flag).
  const nodeOptions = (/^ENV NODE_OPTIONS=(.*)$/m.exec(text)?.[1] ?? "").replace(/^"(.*)"$/, "$1");
  const cmd = /^CMD (\[.*\])$/m.exec(text)?.[1];
  const argv = cmd ? (JSON.parse(cmd) as string[]) : [];
  const cmdFlags = argv[0] === "node" ? argv.slice(1).filter((a) => a.startsWith("--")) : [];
  return { nodeOptions, cmdFlags };
}
