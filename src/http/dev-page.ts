import { existsSync } from "node:fs";
import { readFile } from "node:fs/promises";
import { dirname, join } from "node:path";
import { fileURLToPath } from "node:url";
import type { Req, Res } from "./json.js";

/**
 * The development login page (`web/`): `/` is the HTML, `/app.js` the Connect-Web client bundled from
 * `web/app.ts` with esbuild on first request. Built at run time rather than committed, so the page can never be
 * out of step with the contract; esbuild is a devDependency, which is fine because production never serves it.
 */
export class DevPage {
  /** Bundled once per page (so per app): esbuild takes ~100 ms, a page load none. */
  #bundle: Promise<string> | undefined;

  constructor(readonly dir: string) {}

  /**
   * Finds `web/` above this module (`src/web/` under tsx, `dist/src/web/` when built). Undefined where it was
   * not shipped: a deployment without it simply has no page, rather than failing to start.
   */
  static locate(from: string = fileURLToPath(import.meta.url)): DevPage | undefined {
    for (let dir = dirname(from); ; dir = dirname(dir)) {
      if (existsSync(join(dir, "web", "index.html"))) return new DevPage(join(dir, "web"));
      if (dirname(dir) === dir) return undefined;
    }
  }

  /** Serves the page, its script and its icon; false for any other request. */
  handle(req: Req, res: Res, path: string): boolean {
    if (req.method !== "GET" && req.method !== "HEAD") return false;
    if (path === "/" || path === "/index.html") {
      void this.#send(req, res, "text/html; charset=utf-8", readFile(join(this.dir, "index.html"), "utf8"));
      return true;
    }
    // Browsers ask for /favicon.ico whatever the page links; both get the page's SVG icon.
    if (path === "/favicon.svg" || path === "/favicon.ico") {
      void this.#send(req, res, "image/svg+xml", readFile(join(this.dir, "favicon.svg"), "utf8"));
      return true;
    }
    if (path === "/app.js") {
      void this.#send(req, res, "text/javascript; charset=utf-8", this.bundle());
      return true;
    }
    return false;
  }

  bundle(): Promise<string> {
    if (!this.#bundle) {
      const b = buildBundle(join(this.dir, "app.ts"));
      // A failed build (a syntax error while editing) is retried on the next request, not cached.
      b.catch(() => {
        if (this.#bundle === b) this.#bundle = undefined;
      });
      this.#bundle = b;
    }
    return this.#bundle;
  }

  async #send(req: Req, res: Res, type: string, body: Promise<string>): Promise<void> {
    try {
      const text = await body;
      res.writeHead(200, {
        "content-type": type,
        "content-length": Buffer.byteLength(text),
        "cache-control": "no-store",
      });
      res.end(req.method === "HEAD" ? "" : text);
    } catch (err) {
      const text = `development page unavailable: ${err instanceof Error ? err.message : String(err)}\n`;
      res.writeHead(503, { "content-type": "text/plain; charset=utf-8", "cache-control": "no-store" });
      res.end(text);
    }
  }
}

async function buildBundle(entry: string): Promise<string> {
  // Imported lazily: esbuild is a devDependency and the server must start without it.
  const esbuild = await import("esbuild");
  const out = await esbuild.build({
    entryPoints: [entry],
    bundle: true,
    write: false,
    format: "esm",
    platform: "browser",
    target: "es2022",
    minify: true,
    legalComments: "none",
    logLevel: "silent",
  });
  const file = out.outputFiles[0];
  if (!file) throw new Error("esbuild produced no output");
  return file.text;
}
