import type { IncomingMessage, ServerResponse } from "node:http";
import type { Http2ServerRequest, Http2ServerResponse } from "node:http2";
import { encodeGrpcMessage } from "./grpc-message.js";

/** What a request cut off by a shutdown's deadline is told. */
export const SHUTDOWN_MESSAGE = "the server is shutting down; retry the request";

/**
 * Answers a request that outlived the shutdown deadline with Unavailable in its own protocol, so a client
 * knows to retry elsewhere rather than seeing a reset: gRPC and gRPC-Web get a trailers-only response with
 * grpc-status 14, everything else (Connect unary, REST) a 503 with the JSON error body both share. A response
 * whose headers are already out cannot change its status; it is simply cut off.
 */
export function answerUnavailable(
  req: IncomingMessage | Http2ServerRequest,
  res: ServerResponse | Http2ServerResponse,
): boolean {
  if (res.headersSent || res.writableEnded) return false;
  const contentType = req.headers["content-type"] ?? "";
  if (contentType.startsWith("application/grpc")) {
    const headers = {
      "content-type": contentType.split(";", 1)[0] ?? contentType,
      "grpc-status": "14",
      "grpc-message": encodeGrpcMessage(SHUTDOWN_MESSAGE),
    };
    // HTTP/2: headers with END_STREAM, the trailers-only form gRPC clients expect.
    if ("stream" in res) res.stream.respond({ ":status": 200, ...headers }, { endStream: true });
    else {
      for (const [k, v] of Object.entries(headers)) res.setHeader(k, v);
      res.statusCode = 200;
      res.end();
    }
    ignoreLateAnswer(res);
    return true;
  }
  const body = JSON.stringify({ code: "unavailable", message: SHUTDOWN_MESSAGE, detail: SHUTDOWN_MESSAGE });
  res.statusCode = 503;
  res.setHeader("content-type", "application/json");
  res.setHeader("content-length", Buffer.byteLength(body));
  res.setHeader("retry-after", "1");
  if (!("stream" in res)) res.setHeader("connection", "close");
  res.end(body);
  ignoreLateAnswer(res);
  return true;
}

/**
 * The handler is still running and will try to answer too. Its late writeHead becomes a no-op, so its write
 * meets an ended stream, which connect-node takes as a hang-up (Aborted) and drops quietly instead of
 * logging "headers already sent" as a handler failure. Only after our own end(): end() calls writeHead.
 */
function ignoreLateAnswer(res: ServerResponse | Http2ServerResponse): void {
  Object.defineProperty(res, "writeHead", { value: () => res });
}
