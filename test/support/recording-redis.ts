import { OneWritePerTurnRedis } from "../../src/redis/one-write-per-turn.js";

type SendArgs = Parameters<OneWritePerTurnRedis["sendCommand"]>;

/**
 * The service's single-Redis client, recording when each command leaves ("send getdel") and when its answer
 * comes back ("reply getdel", "failed getdel"): the order tells how many round trips a path waited on.
 * Commands of the connection's own handshake are left out.
 */
export class RecordingRedis extends OneWritePerTurnRedis {
  readonly events: string[] = [];

  /** The names of the commands sent, in order. */
  get sent(): string[] {
    return this.events.filter((e) => e.startsWith("send ")).map((e) => e.slice("send ".length));
  }

  override sendCommand(command: SendArgs[0], target?: SendArgs[1]): unknown {
    if (this.status === "ready") {
      this.events.push(`send ${command.name}`);
      command.promise.then(
        () => this.events.push(`reply ${command.name}`),
        () => this.events.push(`failed ${command.name}`),
      );
    }
    return super.sendCommand(command, target);
  }
}
