/** The wire protocol of a request, as a metric label. */
export type Protocol = "grpc" | "grpc_web" | "connect" | "rest";

/**
 * Which RPC protocol a request speaks, from its content type: `application/grpc[+proto|+json]`,
 * `application/grpc-web[-text][+…]`, anything else connect-node accepted is Connect.
 */
export function rpcProtocolOf(contentType: string | null | undefined): Protocol {
  if (contentType?.startsWith("application/grpc")) {
    return contentType.startsWith("application/grpc-web") ? "grpc_web" : "grpc";
  }
  return "connect";
}
