import { Code } from "@connectrpc/connect";
import type { UniversalServerResponse } from "@connectrpc/connect/protocol";

/** Connect's code names (connectrpc.com/docs/protocol#error-codes), the `code` label of every request. */
export const codeNames: Readonly<Record<Code, string>> = {
  [Code.Canceled]: "canceled",
  [Code.Unknown]: "unknown",
  [Code.InvalidArgument]: "invalid_argument",
  [Code.DeadlineExceeded]: "deadline_exceeded",
  [Code.NotFound]: "not_found",
  [Code.AlreadyExists]: "already_exists",
  [Code.PermissionDenied]: "permission_denied",
  [Code.ResourceExhausted]: "resource_exhausted",
  [Code.FailedPrecondition]: "failed_precondition",
  [Code.Aborted]: "aborted",
  [Code.OutOfRange]: "out_of_range",
  [Code.Unimplemented]: "unimplemented",
  [Code.Internal]: "internal",
  [Code.Unavailable]: "unavailable",
  [Code.DataLoss]: "data_loss",
  [Code.Unauthenticated]: "unauthenticated",
};

/**
 * The code of a Connect unary error by its HTTP status (connectrpc.com/docs/protocol#error-codes), and of
 * connect-node's bare refusals: a method (405), content type (415) or HTTP version (505) the RPC does not take is
 * the caller's mistake, not a server error.
 */
const byStatus: ReadonlyMap<number, string> = new Map([
  [400, "invalid_argument"],
  [401, "unauthenticated"],
  [403, "permission_denied"],
  [404, "not_found"],
  [405, "invalid_argument"],
  [409, "aborted"],
  [415, "invalid_argument"],
  [429, "resource_exhausted"],
  [499, "canceled"],
  [500, "internal"],
  [501, "unimplemented"],
  [503, "unavailable"],
  [504, "deadline_exceeded"],
  [505, "invalid_argument"],
]);

const GRPC_WEB_TRAILER_FLAG = 0x80;
const CONNECT_END_STREAM_FLAG = 0x02;

/**
 * Reports the code a response answers with once it has been written: from the HTTP status, gRPC's
 * `grpc-status` trailer, gRPC-Web's trailer frame or Connect's end-stream message. For requests connect-node
 * refused before the service (and its interceptor) saw them; a response cut short is `canceled`.
 */
export function watchAnswer(
  res: UniversalServerResponse,
  done: (code: string) => void,
): UniversalServerResponse {
  const body = res.body;
  if (res.status !== 200 || body === undefined) {
    done(byStatus.get(res.status) ?? "unknown");
    return res;
  }
  async function* watched(): AsyncGenerator<Uint8Array> {
    let last: Uint8Array | undefined;
    let code = "canceled";
    try {
      for await (const chunk of body ?? []) {
        last = chunk;
        yield chunk;
      }
      code = codeOfEnd(res, last);
    } finally {
      done(code);
    }
  }
  return { ...res, body: watched() };
}

function codeOfEnd(res: UniversalServerResponse, last: Uint8Array | undefined): string {
  const grpcStatus = res.trailer?.get("grpc-status") ?? res.header?.get("grpc-status");
  if (grpcStatus) return grpcCodeName(grpcStatus);
  const type = res.header?.get("content-type") ?? "";
  if (last === undefined || last.byteLength < 5) return "ok";
  // connect-node writes the final frame as one chunk; a compressed one (a long message) is not read.
  const text = Buffer.from(last.buffer, last.byteOffset + 5, last.byteLength - 5).toString("utf8");
  if (type.startsWith("application/grpc-web") && last[0] === GRPC_WEB_TRAILER_FLAG) {
    const status = /^grpc-status:\s*(\d+)/im.exec(text)?.[1];
    return status === undefined ? "unknown" : grpcCodeName(status);
  }
  if (type.startsWith("application/connect+") && last[0] === CONNECT_END_STREAM_FLAG) {
    try {
      const end = JSON.parse(text) as { error?: { code?: unknown } };
      return end.error === undefined ? "ok" : typeof end.error.code === "string" ? end.error.code : "unknown";
    } catch {
      return "unknown";
    }
  }
  return "ok";
}

function grpcCodeName(status: string): string {
  return status === "0" ? "ok" : (codeNames[Number(status) as Code] ?? "unknown");
}
