// Compiles src/, gen/ and packages/client/src/ (the server shares its token-shape check) to dist/ (same layout as `tsc -p tsconfig.build.json`) with esbuild: JavaScript and
// source maps only, no type-check and no declarations, in a fraction of a second. `npm start` runs this;
// `npm run typecheck` and CI check types, and `npm run build` (tsc) also emits the declarations the
// package ships. Plain JavaScript, because it runs before anything is compiled.
import { existsSync, readdirSync, readFileSync, statSync, writeFileSync } from "node:fs";
import { dirname, join } from "node:path";
import { fileURLToPath } from "node:url";

const root = join(dirname(fileURLToPath(import.meta.url)), "..");
const started = performance.now();
const stampFile = join(root, "dist/.build-js-stamp");

/** Every source file with its modification time: a change, an addition or a removal changes the stamp. */
function sourceStamp() {
  const lines = [];
  for (const dir of ["src", "gen", "packages/client/src"]) {
    for (const entry of readdirSync(join(root, dir), { recursive: true, withFileTypes: true })) {
      if (!entry.isFile() || !entry.name.endsWith(".ts")) continue;
      const file = join(entry.parentPath ?? entry.path, entry.name);
      lines.push(`${file} ${statSync(file).mtimeMs}`);
    }
  }
  // This script and the compiler options shape the output too.
  for (const file of ["scripts/build-js.mjs", "tsconfig.json", "tsconfig.build.json"]) {
    lines.push(`${file} ${statSync(join(root, file)).mtimeMs}`);
  }
  return lines.sort().join("\n");
}

// Nothing changed since the last build: skip loading esbuild at all (its service process costs more than
// the check).
const stamp = sourceStamp();
const fresh = existsSync(stampFile) && existsSync(join(root, "dist/src/main.js"));
if (fresh && readFileSync(stampFile, "utf8") === stamp && process.argv[2] !== "--force") {
  process.exit(0);
}

let esbuild;
try {
  esbuild = await import("esbuild");
} catch {
  // An install without devDependencies (`npm ci --omit=dev`) can still run what was built before.
  if (existsSync(join(root, "dist/src/main.js"))) {
    process.stderr.write("build-js: esbuild is not installed; running the existing dist/\n");
    process.exit(0);
  }
  process.stderr.write("build-js: esbuild is not installed and there is no dist/: run `npm ci` first\n");
  process.exit(1);
}

const result = await esbuild.build({
  absWorkingDir: root,
  entryPoints: ["src/**/*.ts", "gen/**/*.ts", "packages/client/src/**/*.ts"],
  outdir: "dist",
  outbase: ".",
  format: "esm",
  platform: "node",
  target: "node20",
  sourcemap: true,
  tsconfig: "tsconfig.build.json",
  logLevel: "warning",
});
if (result.errors.length > 0) process.exit(1);
writeFileSync(stampFile, stamp);
if (process.env.BUILD_JS_QUIET !== "1") {
  process.stderr.write(`build-js: src/, gen/ and packages/client/src/ -> dist/ in ${Math.round(performance.now() - started)} ms\n`);
}
