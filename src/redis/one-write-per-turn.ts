import { Redis } from "ioredis";

type Command = Parameters<Redis["sendCommand"]>[0];
type Target = Parameters<Redis["sendCommand"]>[1];

/**
 * A single-Redis client that writes the commands of one turn of the event loop to its socket in one `writev`.
 * Each command ioredis writes is otherwise a `write(2)` of its own on the Redis socket, and on loopback the
 * kernel's TCP path runs inside that call: under load these writes were ~11 % of a gRPC SendOtp's CPU.
 * ioredis's auto-pipelining also coalesces them, but builds a `Pipeline` per tick that copies every defined
 * script onto itself (see src/redis/connect.ts); corking the socket costs a flag and one queued entry per write.
 *
 * The socket is corked at the first command and uncorked by `setImmediate`, which runs once the I/O callbacks
 * of this turn are done: the commands a request issues together (`Promise.all`), and those of every request
 * whose bytes or Redis replies arrived in this turn, leave together. Uncorking on `process.nextTick` (after the
 * current callback only) left most writes holding one command and measured 5–9 % more CPU per request. A
 * command waits at most for the rest of the turn it was issued in. Commands ioredis writes before the
 * connection is ready (its handshake) are left alone.
 */
export class OneWritePerTurnRedis extends Redis {
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
      setImmediate(this.#uncork);
    }
    return super.sendCommand(command, target);
  }
}
