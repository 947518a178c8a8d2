import { readFileSync } from "node:fs";

/**
 * Summarises a profile the bench wrote under bench/results/profiles/ (`BENCH_CPU_PROF=1` or `BENCH_ALLOC_PROF=1`
 * with `npm run bench`, one file per measured run): CPU self time, or bytes allocated, by function and by where
 * the code lives (our `src/`, a package, Node).
 * Usage: tsx bench/profile-top.ts <file.cpuprofile|file.heapprofile> [rows] [requests]
 * With the run's request count, an allocation profile is also given per request.
 */
interface CallFrame {
  functionName: string;
  url: string;
  lineNumber: number;
}
/** V8's CPU profile: a flat node list, and which node each sample landed in for how long. */
interface CpuProfile {
  nodes: { id: number; callFrame: CallFrame }[];
  samples: number[];
  timeDeltas: number[];
}
/** V8's sampling heap profile: a tree whose nodes carry the bytes allocated there. */
interface HeapNode {
  callFrame: CallFrame;
  selfSize: number;
  children: HeapNode[];
}
interface HeapProfile {
  head: HeapNode;
}

const [file, rowsArg, requestsArg] = process.argv.slice(2);
if (!file) {
  process.stderr.write(
    "usage: tsx bench/profile-top.ts <file.cpuprofile|file.heapprofile> [rows] [requests]\n",
  );
  process.exit(2);
}
const rows = Number(rowsArg ?? "30");
const requests = requestsArg === undefined ? undefined : Number(requestsArg);
const parsed = JSON.parse(readFileSync(file, "utf8")) as CpuProfile | HeapProfile;

/** Self cost per call frame: microseconds (CPU) or bytes (allocation). */
const costs: [CallFrame, number][] = [];
if ("head" in parsed) {
  const stack = [parsed.head];
  for (let n = stack.pop(); n; n = stack.pop()) {
    if (n.selfSize > 0) costs.push([n.callFrame, n.selfSize]);
    stack.push(...n.children);
  }
} else {
  const frames = new Map(parsed.nodes.map((n) => [n.id, n.callFrame]));
  parsed.samples.forEach((id, i) => {
    const frame = frames.get(id);
    if (frame) costs.push([frame, parsed.timeDeltas[i] ?? 0]);
  });
}
const total = costs.reduce((a, [, c]) => a + c, 0);

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
for (const [{ functionName, url, lineNumber }, cost] of costs) {
  const name = `${functionName || "(anonymous)"} ${url.replace(/^.*\/(node_modules|dist)\//, "$1/")}:${lineNumber + 1}`;
  byFunction.set(name, (byFunction.get(name) ?? 0) + cost);
  const place = where(url);
  byPlace.set(place, (byPlace.get(place) ?? 0) + cost);
}
const what = "head" in parsed ? "allocated" : "self time";
const amount = (c: number): string =>
  "head" in parsed
    ? `${(c / 2 ** 20).toFixed(1)} MB${requests ? `, ${(c / requests / 1024).toFixed(2)} KB/req` : ""}`
    : `${(c / 1e3).toFixed(0)} ms`;
const show = (title: string, m: Map<string, number>, n: number) => {
  process.stdout.write(`\n${title}\n`);
  for (const [k, c] of [...m].sort((a, b) => b[1] - a[1]).slice(0, n)) {
    process.stdout.write(`${((100 * c) / total).toFixed(1).padStart(5)}%  ${k}  (${amount(c)})\n`);
  }
};
process.stdout.write(`${file}: ${what} ${amount(total)}\n`);
show(`${what} by place`, byPlace, 20);
show(`${what} by function`, byFunction, rows);
