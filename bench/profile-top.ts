import { readFileSync } from "node:fs";

/**
 * Summarises a V8 CPU profile (`BENCH_CPU_PROF=1 npm run bench` writes one per server under
 * bench/results/profiles/): self time by function and by where the code lives (our `src/`, a package, Node).
 * Usage: tsx bench/profile-top.ts <file.cpuprofile> [rows]
 */
interface Node {
  id: number;
  callFrame: { functionName: string; url: string; lineNumber: number };
  hitCount?: number;
}
interface Profile {
  nodes: Node[];
  samples: number[];
  timeDeltas: number[];
}

const [file, rowsArg] = process.argv.slice(2);
if (!file) {
  process.stderr.write("usage: tsx bench/profile-top.ts <file.cpuprofile> [rows]\n");
  process.exit(2);
}
const rows = Number(rowsArg ?? "30");
const profile = JSON.parse(readFileSync(file, "utf8")) as Profile;
const byId = new Map(profile.nodes.map((n) => [n.id, n]));
const self = new Map<number, number>();
profile.samples.forEach((id, i) => {
  self.set(id, (self.get(id) ?? 0) + (profile.timeDeltas[i] ?? 0));
});
const total = [...self.values()].reduce((a, b) => a + b, 0);

const where = (url: string): string => {
  const pkg = /node_modules\/((?:@[^/]+\/)?[^/]+)/.exec(url);
  if (pkg) return pkg[1] ?? url;
  if (url.includes("/dist/src/")) return "ours (src)";
  if (url.includes("/dist/gen/")) return "ours (gen)";
  if (url.includes("/dist/bench/")) return "bench harness";
  if (url.startsWith("node:")) return "node";
  return url === "" ? "native / gc / idle" : url;
};

const byFunction = new Map<string, number>();
const byPlace = new Map<string, number>();
for (const [id, us] of self) {
  const n = byId.get(id);
  if (!n) continue;
  const { functionName, url, lineNumber } = n.callFrame;
  const name = `${functionName || "(anonymous)"} ${url.replace(/^.*\/(node_modules|dist)\//, "$1/")}:${lineNumber + 1}`;
  byFunction.set(name, (byFunction.get(name) ?? 0) + us);
  const place = where(url);
  byPlace.set(place, (byPlace.get(place) ?? 0) + us);
}
const show = (title: string, m: Map<string, number>, n: number) => {
  process.stdout.write(`\n${title}\n`);
  for (const [k, us] of [...m].sort((a, b) => b[1] - a[1]).slice(0, n)) {
    process.stdout.write(`${((100 * us) / total).toFixed(1).padStart(5)}%  ${k}\n`);
  }
};
process.stdout.write(`${file}: ${(total / 1e6).toFixed(1)} s sampled\n`);
show("self time by place", byPlace, 20);
show("self time by function", byFunction, rows);
