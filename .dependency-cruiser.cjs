/** Dependency rules for src/, checked in CI (`npm run depcheck`). Type-only imports count. */
module.exports = {
  forbidden: [
    {
      name: "no-circular",
      comment: "No import cycle between files.",
      severity: "error",
      from: {},
      to: { circular: true },
    },
    {
      name: "no-circular-folders",
      comment: "No import cycle between folders: dependencies flow one way.",
      severity: "error",
      scope: "folder",
      from: {},
      to: { circular: true },
    },
    {
      name: "kernel-imports-nothing",
      comment: "src/login is the kernel: adapters depend on it, never the reverse.",
      severity: "error",
      from: { path: "^src/login/" },
      to: { path: "^src/", pathNot: "^src/login/" },
    },
    {
      name: "rest-apart-from-rpc",
      comment: "The REST adapter and the Connect adapter do not import each other.",
      severity: "error",
      from: { path: "^src/http/rest\\.ts$" },
      to: { path: "^src/rpc/" },
    },
    {
      name: "rpc-apart-from-http",
      comment: "The Connect adapter knows nothing of the HTTP layer.",
      severity: "error",
      from: { path: "^src/rpc/" },
      to: { path: "^src/http/" },
    },
    {
      name: "client-stays-light",
      comment:
        "packages/client is what other services install: it imports no server module, so it never loads Redis, pino or the SMS providers (the server shares its token-shape.ts, never the reverse).",
      severity: "error",
      from: { path: "^packages/client/" },
      to: { path: "^src/" },
    },
  ],
  options: {
    doNotFollow: { path: "node_modules" },
    tsPreCompilationDeps: true,
    tsConfig: { fileName: "tsconfig.json" },
    enhancedResolveOptions: { extensions: [".ts", ".js"] },
  },
};
