import { buildApp } from "./app.js";
import { ConfigError, loadConfig } from "./config.js";
import { createLogger } from "./log.js";

async function main(): Promise<void> {
  let config: ReturnType<typeof loadConfig>;
  try {
    config = loadConfig(process.env);
  } catch (err) {
    if (err instanceof ConfigError) {
      process.stderr.write(`otp-auth: refusing to start, ${err.message}\n`);
      process.exit(1);
    }
    throw err;
  }
  const log = createLogger({ production: config.production, level: config.logLevel });
  const app = await buildApp(config, log);
  const addr = await app.server.listen(config.port, config.host);
  log.info(
    { host: addr.address, port: addr.port, production: config.production },
    `otp-auth listening on http://${addr.address}:${addr.port} (gRPC, gRPC-Web, Connect and /api/v1 on one port)`,
  );
  if (app.metricsListener && config.metricsPort !== undefined) {
    const m = await app.metricsListener.listen(config.metricsPort, config.metricsHost);
    log.info(
      { host: m.address, port: m.port },
      `metrics on http://${m.address}:${m.port}/metrics (not on the API port)`,
    );
  }
  // A second signal is not caught (`once`): Ctrl-C twice ends the process at once.
  const stop = (signal: string) => {
    log.info(
      { signal, timeoutMs: config.shutdownTimeoutMs, inFlight: app.server.inFlight },
      "shutting down: not ready, refusing new connections, draining in-flight requests",
    );
    app.shutdown(config.shutdownTimeoutMs).then(
      (r) => {
        log.info({ forced: r.forced, ms: r.ms }, "shut down");
        process.exit(0);
      },
      (err: unknown) => {
        log.error({ err }, "shutdown failed");
        process.exit(1);
      },
    );
  };
  process.once("SIGTERM", () => stop("SIGTERM"));
  process.once("SIGINT", () => stop("SIGINT"));
}

await main();
