import type { Client } from "../login/login-service.js";
import type { Req } from "./json.js";

/** The socket peer; IPv4-mapped IPv6 addresses are unwrapped so one client has one key. */
export function clientOf(req: Req): Client {
  const addr = req.socket?.remoteAddress ?? "unknown";
  return { ip: addr.startsWith("::ffff:") ? addr.slice(7) : addr };
}
