import { createServer, type Server } from "node:http";
import type { AddressInfo } from "node:net";
import { HttpError, sendError } from "./json.js";
import { METRICS_PATH, type OpsRoute } from "./ops-routes.js";

/**
 * METRICS_PORT: `/metrics` on a plain HTTP/1.1 listener of its own, so it can be bound to an internal address
 * (or left out of the public load balancer) while the API port answers it 404. It serves nothing else.
 */
export class MetricsListener {
  readonly #server: Server;

  constructor(route: OpsRoute) {
    this.#server = createServer((req, res) => {
      if ((req.url ?? "/").split("?", 1)[0] === METRICS_PATH) route(req, res);
      else sendError(res, new HttpError(404, "NOT_FOUND", `only ${METRICS_PATH} is served here`));
    });
    // A scraper reconnects every interval anyway; idle sockets must not hold a shutdown open.
    this.#server.keepAliveTimeout = 5_000;
  }

  listen(port: number, host: string): Promise<AddressInfo> {
    return new Promise((resolve, reject) => {
      this.#server.once("error", reject);
      this.#server.listen(port, host, () => {
        this.#server.off("error", reject);
        resolve(this.#server.address() as AddressInfo);
      });
    });
  }

  /** Stops listening and ends every connection: a scrape cut short is simply retried by the next one. */
  close(): Promise<void> {
    if (!this.#server.listening) return Promise.resolve();
    return new Promise((resolve, reject) => {
      this.#server.close((err) => (err ? reject(err) : resolve()));
      this.#server.closeAllConnections();
    });
  }
}
