import { Redis } from "ioredis";

type Command = Parameters<Redis["sendCommand"]>[0];
type Target = Parameters<Redis["sendCommand"]>[1];

/**
 * A single-Redis client that writes the commands of one tick to its socket in one `writev`. Each command
 * ioredis writes is otherwise a `write(2)` of its own on the Redis socket, and on loopback the kernel's TCP
 * path runs inside that call: under load these writes were ~11 % of a gRPC SendOtp's CPU. ioredis's
 * auto-pipelining also coalesces them, but builds a `Pipeline` per tick that copies every defined script onto
 * itself (see src/redis/connect.ts); corking the socket costs a closure-free flag and one queued entry per write.
 *
 * The socket is corked at the first command of a tick and uncorked on `process.nextTick`, which runs after the
 * current callback and its promise jobs: commands issued together by one request (`Promise.all`), and by every
 * request whose Redis replies arrived in the same read, leave together. Nothing waits longer than the tick it
 * was issued in. Commands ioredis writes before the connection is ready (its handshake) are left alone.
 */
export class OneWritePerTickRedis extends Redis {
  #corked: Redis["stream"] | undefined;
  readonly #uncork = () => {
    const stream = this.#corked;
    this.#corked = undefined;
    stream?.uncork();
  };

  override sendCommand(command: Command, target?: Target): unknown {
    if (this.#corked === undefined && target === undefined && this.status === "ready") {
      const stream = this.stream;
      stream.cork();
      this.#corked = stream;
      process.nextTick(this.#uncork);
    }
    return super.sendCommand(command, target);
  }
}
