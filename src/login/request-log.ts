import type { Client } from "./model.js";
import type { LoginLog } from "./ports.js";

/**
 * The log as seen while serving one request: every line carries the request's id as `reqId`. The id travels
 * in the `Client` the transport built, not in an AsyncLocalStorage: on Node 20 an enabled AsyncLocalStorage
 * runs a hook on every promise the process creates, which measured ~10 % of a SendOtp's CPU. Without an id
 * (work no request asked for, such as a reroute after a receipt) it is the log itself.
 */
export function requestLog(log: LoginLog, client: Pick<Client, "requestId"> | undefined): LoginLog {
  const id = client?.requestId;
  return id === undefined ? log : new RequestLog(log, id);
}

/** `reqId` as a log line carries it, for lines built by hand (the SMS layer's, the limits'); none without an id. */
export function reqIdField(requestId: string | undefined): { reqId?: string } {
  return requestId === undefined ? {} : { reqId: requestId };
}

class RequestLog implements LoginLog {
  constructor(
    private readonly log: LoginLog,
    private readonly reqId: string,
  ) {}

  info(fields: object, message: string): void {
    this.log.info({ reqId: this.reqId, ...fields }, message);
  }

  warn(fields: object, message: string): void {
    this.log.warn({ reqId: this.reqId, ...fields }, message);
  }

  error(fields: object, message: string): void {
    this.log.error({ reqId: this.reqId, ...fields }, message);
  }
}
