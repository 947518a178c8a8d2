import { existsSync, readFileSync } from "node:fs";
import { dirname, join } from "node:path";
import { parse } from "yaml";

const FILE = "openapi.yaml";

let cached: string | undefined;

/**
 * The `/api/v1` contract as JSON, for `GET /openapi.json`. The YAML at the top of the repository is the one
 * source (reviewed as text, validated against in tests); it is converted once per process. The file is found
 * by walking up from here, so the same code works from `src/` under tsx and from `dist/src/` in a container.
 */
export function openApiJson(): string {
  cached ??= JSON.stringify(parse(readFileSync(findUp(FILE, import.meta.dirname), "utf8")));
  return cached;
}

function findUp(name: string, from: string): string {
  for (let dir = from; ; dir = dirname(dir)) {
    const candidate = join(dir, name);
    if (existsSync(candidate)) return candidate;
    if (dirname(dir) === dir) throw new Error(`${name} not found above ${from}: ship it beside package.json`);
  }
}
