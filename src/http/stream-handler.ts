import type http2 from "node:http2";

/** A request served on its HTTP/2 stream without Node's compatibility layer (the gRPC fast path). */
export interface InFlightStream {
  /** Answers Unavailable now, if it has not answered yet: a shutdown's deadline passed. */
  unavailable(): void;
}

/**
 * Offered every HTTP/2 stream before Node's compatibility layer turns it into a request and a response: the
 * call it serves, or undefined to leave the stream to the request handler.
 */
export type StreamHandler = (
  stream: http2.ServerHttp2Stream,
  headers: http2.IncomingHttpHeaders,
) => InFlightStream | undefined;
