import { defineConfig } from "vitest/config";

/**
 * The suites that call the service over gRPC (grpc-js, connect's gRPC transport, `buf curl`, raw HTTP/2). They
 * run twice: once as everything else does, with the gRPC fast path on (the default), and once with
 * GRPC_FAST_PATH=false, through connect-node alone, so both paths are held to the same expectations.
 */
const GRPC_SUITES = [
  "test/server.test.ts",
  "test/reasons.test.ts",
  "test/abuse.test.ts",
  "test/shutdown.test.ts",
  "test/examples.test.ts",
  "test/fuzz.test.ts",
  "test/ops.test.ts",
  "test/malformed-requests.test.ts",
  "test/grpc-calls.test.ts",
  "test/logs.test.ts",
  "test/grpc-message.test.ts",
  "test/sessions.test.ts",
  "test/verifications.test.ts",
  "test/dev-mode.test.ts",
];

export default defineConfig({
  test: {
    // Suites start servers and redis-servers; on 2 cores, generous timeouts keep a loaded machine green.
    testTimeout: 30_000,
    hookTimeout: 30_000,
    pool: "forks",
    projects: [
      { extends: true, test: { name: "default", include: ["test/**/*.test.ts"] } },
      {
        extends: true,
        test: { name: "grpc-via-connect-node", include: GRPC_SUITES, env: { GRPC_FAST_PATH: "false" } },
      },
    ],
  },
});
