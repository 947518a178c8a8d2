import { createLogger, LOG_BUFFER_MAX_BYTES } from "../../src/log.js";

/**
 * A process that logs through the production destination (stdout), for test/log-destination.test.ts.
 * `stay`: one line, then it keeps running (only a timed flush can deliver the line);
 * `exit`: three lines, then `process.exit(0)` at once (only the flush at exit can deliver them);
 * `flood`: twice LOG_BUFFER_MAX_BYTES of lines at once, then it keeps running (its stdout is not read).
 */
const log = createLogger({ production: true });
const mode = process.argv[2];
if (mode === "stay") {
  log.info({ n: 1 }, "lone line");
  setTimeout(() => process.exit(0), 60_000);
} else if (mode === "flood") {
  const filler = "x".repeat(200);
  for (let n = 0; n < (2 * LOG_BUFFER_MAX_BYTES) / filler.length; n++) log.info({ n, filler }, "flood");
  process.stderr.write("flooded\n");
  setTimeout(() => process.exit(0), 60_000);
} else {
  for (const n of [1, 2, 3]) log.info({ n }, "line before exit");
  process.exit(0);
}
