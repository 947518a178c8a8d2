import type { EnvReader } from "../env-reader.js";

/**
 * `GRPC_FAST_PATH` (default true): serve unary gRPC calls of AuthService without connect-node's pipeline
 * (`grpc-fast-path.ts`). `false` sends every gRPC call through connect-node, as before it existed.
 */
export function readGrpcFastPath(r: EnvReader): boolean {
  return r.bool("GRPC_FAST_PATH", true);
}
