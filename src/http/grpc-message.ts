import type { OutgoingHttpHeaders } from "node:http";

/** Bytes the gRPC spec lets through unencoded: printable ASCII except '%'. */
const PLAIN = /^[\x20-\x24\x26-\x7e]*$/;

/**
 * `grpc-message` as the gRPC spec encodes it (PROTOCOL-HTTP2.md): percent-encode only the UTF-8 bytes outside
 * 0x20-0x7E, and '%'. connect-node uses `encodeURIComponent`, which also encodes `;`, `,`, `+`, `/`, `:`, … and
 * grpc-js decodes with `decodeURI`, which leaves those escaped: "incorrect code; 4 attempts left" reached
 * grpc-js callers as "incorrect code%3B 4 attempts left". Spec-encoded, every decoder reads the same text.
 */
export function encodeGrpcMessage(message: string): string {
  if (PLAIN.test(message)) return message;
  let out = "";
  for (const byte of Buffer.from(message, "utf8")) {
    out +=
      byte >= 0x20 && byte <= 0x7e && byte !== 0x25
        ? String.fromCharCode(byte)
        : `%${byte.toString(16).toUpperCase().padStart(2, "0")}`;
  }
  return out;
}

/** connect-node's encoding back to the text, then the spec's encoding. */
function reencode(value: string): string {
  let text: string;
  try {
    text = decodeURIComponent(value);
  } catch {
    // Not connect-node's encoding (written by someone else, already spec-encoded): leave it alone.
    return value;
  }
  return encodeGrpcMessage(text);
}

interface TrailerWriter {
  addTrailers(headers: OutgoingHttpHeaders): void;
}

/**
 * Rewrites `grpc-message` in the trailers connect-node adds to a gRPC response (its errors are never
 * trailers-only: headers go out first, the status in trailers via `addTrailers`). Only for gRPC: gRPC-Web and
 * Connect carry the message in the body, and their clients decode connect-node's encoding.
 */
export function specEncodeGrpcMessage(res: TrailerWriter): void {
  const addTrailers = res.addTrailers.bind(res);
  res.addTrailers = (headers) => {
    const message = headers["grpc-message"];
    addTrailers(typeof message === "string" ? { ...headers, "grpc-message": reencode(message) } : headers);
  };
}
