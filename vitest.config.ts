import { defineConfig } from "vitest/config";

export default defineConfig({
  test: {
    include: ["test/**/*.test.ts"],
    // Suites start servers and redis-servers; on 2 cores, generous timeouts keep a loaded machine green.
    testTimeout: 30_000,
    hookTimeout: 30_000,
    pool: "forks",
  },
});
