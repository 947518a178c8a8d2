import { connect, type Socket } from "node:net";

/**
 * HTTP/2 frames built by hand (RFC 9113 §4.1), for tests that must send what no well-behaved client would:
 * DATA on stream 0, oversized header blocks, endless CONTINUATION, half a body.
 */

export const PREFACE = Buffer.from("PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n");

export const FrameType = {
  DATA: 0x0,
  HEADERS: 0x1,
  RST_STREAM: 0x3,
  SETTINGS: 0x4,
  PING: 0x6,
  GOAWAY: 0x7,
  WINDOW_UPDATE: 0x8,
  CONTINUATION: 0x9,
} as const;

export const Flag = { END_STREAM: 0x1, ACK: 0x1, END_HEADERS: 0x4 } as const;

export const ErrorCode = {
  NO_ERROR: 0x0,
  PROTOCOL_ERROR: 0x1,
  CANCEL: 0x8,
  REFUSED_STREAM: 0x7,
  ENHANCE_YOUR_CALM: 0xb,
} as const;

/** A frame: 3-byte length, type, flags, 4-byte stream id (reserved bit clear), then the payload. */
export function frame(
  type: number,
  flags: number,
  streamId: number,
  payload: Buffer = Buffer.alloc(0),
): Buffer {
  const header = Buffer.alloc(9);
  header.writeUIntBE(payload.length, 0, 3);
  header.writeUInt8(type, 3);
  header.writeUInt8(flags, 4);
  header.writeUInt32BE(streamId & 0x7fffffff, 5);
  return Buffer.concat([header, payload]);
}

export const emptySettings = (): Buffer => frame(FrameType.SETTINGS, 0, 0);
export const settingsAck = (): Buffer => frame(FrameType.SETTINGS, Flag.ACK, 0);

/** An HPACK string literal without Huffman coding; lengths up to 126 fit the 7-bit prefix. */
function literal(s: string): Buffer {
  const bytes = Buffer.from(s, "latin1");
  if (bytes.length > 126) throw new Error("literal too long for this helper");
  return Buffer.concat([Buffer.of(bytes.length), bytes]);
}

/** "Literal header field without indexing, new name" (RFC 7541 §6.2.2), so no dynamic table is involved. */
export function header(name: string, value: string): Buffer {
  return Buffer.concat([Buffer.of(0x00), literal(name), literal(value)]);
}

/** A request header block for `POST path` on this host, in HPACK without indexing. */
export function requestBlock(path: string, extra: Buffer[] = []): Buffer {
  return Buffer.concat([
    header(":method", "POST"),
    header(":scheme", "http"),
    header(":authority", "127.0.0.1"),
    header(":path", path),
    header("content-type", "application/json"),
    ...extra,
  ]);
}

/** HEADERS opening `streamId`; END_HEADERS unless `endHeaders` is false (CONTINUATION must follow). */
export function headers(
  streamId: number,
  block: Buffer,
  opts: { endStream?: boolean; endHeaders?: boolean } = {},
) {
  const flags = (opts.endHeaders === false ? 0 : Flag.END_HEADERS) | (opts.endStream ? Flag.END_STREAM : 0);
  return frame(FrameType.HEADERS, flags, streamId, block);
}

export const continuation = (streamId: number, block: Buffer, endHeaders = false): Buffer =>
  frame(FrameType.CONTINUATION, endHeaders ? Flag.END_HEADERS : 0, streamId, block);

export const data = (streamId: number, payload: Buffer, endStream = false): Buffer =>
  frame(FrameType.DATA, endStream ? Flag.END_STREAM : 0, streamId, payload);

/** A parsed frame from the server. */
export interface Frame {
  readonly type: number;
  readonly flags: number;
  readonly streamId: number;
  readonly payload: Buffer;
}

/** Splits a byte stream into frames; bytes of an incomplete last frame are left in `rest`. */
export function parseFrames(bytes: Buffer): { frames: Frame[]; rest: Buffer } {
  const frames: Frame[] = [];
  let at = 0;
  while (bytes.length - at >= 9) {
    const length = bytes.readUIntBE(at, 3);
    if (bytes.length - at < 9 + length) break;
    frames.push({
      type: bytes.readUInt8(at + 3),
      flags: bytes.readUInt8(at + 4),
      streamId: bytes.readUInt32BE(at + 5) & 0x7fffffff,
      payload: bytes.subarray(at + 9, at + 9 + length),
    });
    at += 9 + length;
  }
  return { frames, rest: bytes.subarray(at) };
}

/** The error code of a GOAWAY or RST_STREAM frame. */
export function errorCodeOf(f: Frame): number {
  return f.type === FrameType.GOAWAY ? f.payload.readUInt32BE(4) : f.payload.readUInt32BE(0);
}

/** A GET header block for `path`, in HPACK without indexing. */
export function getBlock(path: string): Buffer {
  return Buffer.concat([
    header(":method", "GET"),
    header(":scheme", "http"),
    header(":authority", "127.0.0.1"),
    header(":path", path),
  ]);
}

/** A raw TCP connection that records every frame the server sends, answering PINGs if asked to. */
export class RawH2 {
  readonly frames: Frame[] = [];
  readonly closed: Promise<void>;
  #pending: Buffer = Buffer.alloc(0);
  #isClosed = false;

  private constructor(
    readonly socket: Socket,
    answerPings: boolean,
  ) {
    socket.on("error", () => {});
    socket.on("data", (d: Buffer) => {
      const { frames, rest } = parseFrames(Buffer.concat([this.#pending, d]));
      this.#pending = rest;
      for (const f of frames) {
        this.frames.push(f);
        if (answerPings && f.type === FrameType.PING && !(f.flags & Flag.ACK) && !socket.destroyed) {
          socket.write(frame(FrameType.PING, Flag.ACK, 0, f.payload));
        }
      }
    });
    this.closed = new Promise((resolve) =>
      socket.once("close", () => {
        this.#isClosed = true;
        resolve();
      }),
    );
  }

  static async open(port: number, opts: { answerPings?: boolean } = {}): Promise<RawH2> {
    const socket = connect(port, "127.0.0.1");
    const raw = new RawH2(socket, opts.answerPings ?? false);
    await new Promise<void>((resolve, reject) => {
      socket.once("connect", resolve);
      socket.once("error", reject);
    });
    return raw;
  }

  get isClosed(): boolean {
    return this.#isClosed;
  }

  send(...frames: Buffer[]): void {
    if (!this.socket.destroyed) this.socket.write(Buffer.concat(frames));
  }

  /** Frames of a type, optionally with a given error code (GOAWAY, RST_STREAM). */
  received(type: number, code?: number): Frame[] {
    return this.frames.filter((f) => f.type === type && (code === undefined || errorCodeOf(f) === code));
  }
}
