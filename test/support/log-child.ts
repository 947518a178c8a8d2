import { createLogger } from "../../src/log.js";

/**
 * A process that logs through the production destination (stdout), for test/log-destination.test.ts.
 * `stay`: one line, then it keeps running (only a timed flush can deliver the line);
 * `exit`: three lines, then `process.exit(0)` at once (only the flush at exit can deliver them).
 */
const log = createLogger({ production: true });
const mode = process.argv[2];
if (mode === "stay") {
  log.info({ n: 1 }, "lone line");
  setTimeout(() => process.exit(0), 60_000);
} else {
  for (const n of [1, 2, 3]) log.info({ n }, "line before exit");
  process.exit(0);
}
