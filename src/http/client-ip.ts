import type { IncomingHttpHeaders } from "node:http";
import { BlockList, isIP } from "node:net";
import type { Client } from "../login/model.js";
import { requestIdFrom } from "./request-id.js";

/** Whether `entry` is an IP address or a CIDR ("10.0.0.0/8", "2001:db8::/32"). */
export function isIpOrCidr(entry: string): boolean {
  const [addr = "", bits, ...rest] = entry.split("/");
  const family = isIP(addr);
  if (family === 0 || rest.length > 0) return false;
  if (bits === undefined) return true;
  return /^\d{1,3}$/.test(bits) && Number(bits) <= (family === 4 ? 32 : 128);
}

const MEMO_SIZE = 4096;

/** The proxies (TRUSTED_PROXIES) whose X-Forwarded-For is believed. */
export class TrustedProxies {
  readonly #list = new BlockList();
  // IPv4 entries as (network, mask) integers: a client address is checked with two integer operations per
  // entry, where a BlockList check builds a SocketAddress (~2 % of a proxied request, whose client address is
  // new each time). IPv6 goes to the BlockList, its answers remembered (bounded, cleared when full).
  readonly #v4: { readonly net: number; readonly mask: number }[] = [];
  readonly #v6memo = new Map<string, boolean>();
  readonly size: number;

  /** @param entries IPs and CIDRs, already validated by `isIpOrCidr` (config does). */
  constructor(entries: readonly string[] = []) {
    for (const entry of entries) {
      const [addr = "", bits] = entry.split("/");
      if (isIP(addr) === 4) {
        const mask = v4Mask(bits === undefined ? 32 : Number(bits));
        this.#v4.push({ net: v4Int(addr) & mask, mask });
      } else if (bits === undefined) this.#list.addAddress(addr, "ipv6");
      else this.#list.addSubnet(addr, Number(bits), "ipv6");
    }
    this.size = entries.length;
  }

  has(ip: string): boolean {
    const family = isIP(ip);
    if (family === 4) {
      const n = v4Int(ip);
      for (const { net, mask } of this.#v4) if ((n & mask) === net) return true;
      return false;
    }
    if (family !== 6) return false;
    const known = this.#v6memo.get(ip);
    if (known !== undefined) return known;
    // An IPv4-mapped IPv6 spelling is matched by the BlockList against IPv4 entries too; keep that answer.
    const trusted = this.#list.check(ip, "ipv6") || this.#mappedV4(ip);
    if (this.#v6memo.size >= MEMO_SIZE) this.#v6memo.clear();
    this.#v6memo.set(ip, trusted);
    return trusted;
  }

  #mappedV4(ip: string): boolean {
    const m = /^::ffff:(\d+\.\d+\.\d+\.\d+)$/i.exec(ip);
    return m?.[1] !== undefined && this.has(m[1]);
  }
}

/** The netmask of a /`bits` IPv4 prefix as a 32-bit integer (JavaScript shifts by `bits % 32`: /0 apart). */
function v4Mask(bits: number): number {
  return bits === 0 ? 0 : -1 << (32 - bits);
}

/** A dotted-quad IPv4 address (already checked by `isIP`) as a 32-bit integer. */
function v4Int(addr: string): number {
  let n = 0;
  for (const part of addr.split(".")) n = (n << 8) | Number(part);
  return n;
}

/**
 * The client's address. The socket peer, unless the peer is a trusted proxy: then X-Forwarded-For is read
 * from the right (each proxy appends the address it saw), skipping trusted proxies, and the first untrusted
 * address is the client. Everything left of it was written by the client itself and is never believed, so a
 * spoofed header gains nothing. A hop that is not an address stops the walk at the last address that is: the
 * proxy that passed it on answers for it, rather than letting a client pick a fresh key per request.
 */
export function resolveClientIp(
  peer: string,
  forwardedFor: string | readonly string[] | undefined,
  trusted: TrustedProxies,
): string {
  let client = unwrapMapped(peer);
  if (forwardedFor === undefined || trusted.size === 0 || !trusted.has(client)) return client;
  const hops = (typeof forwardedFor === "string" ? forwardedFor : forwardedFor.join(",")).split(",");
  for (let i = hops.length - 1; i >= 0; i--) {
    const hop = parseHop(hops[i] ?? "");
    if (hop === undefined) return client;
    client = hop;
    if (!trusted.has(hop)) return hop;
  }
  // Every hop is a trusted proxy: the left-most is as close to the client as we can get.
  return client;
}

/** What the client is read from: a request's headers and the socket it came on. */
export interface ClientRequest {
  readonly headers: IncomingHttpHeaders;
  readonly socket?: { readonly remoteAddress?: string | undefined } | null | undefined;
}

/** Resolves each request's client against the configured trusted proxies. */
export function clientResolver(trusted: TrustedProxies): (req: ClientRequest) => Client {
  return (req) => {
    const peer = req.socket?.remoteAddress ?? "unknown";
    const forwardedFor = req.headers["x-forwarded-for"];
    const ip = resolveClientIp(peer, forwardedFor, trusted);
    // A request that came through a proxy (any proxy header, believed or not) is not a person at this
    // machine's keyboard, even when the proxy itself runs here.
    const proxied = forwardedFor !== undefined || req.headers.forwarded !== undefined;
    const userAgent = req.headers["user-agent"];
    const requestId = requestIdFrom(req);
    return !proxied && isLoopback(unwrapMapped(peer))
      ? { ip, userAgent, requestId, loopback: true }
      : { ip, userAgent, requestId };
  };
}

const LOOPBACK = new BlockList();
LOOPBACK.addSubnet("127.0.0.0", 8, "ipv4");
LOOPBACK.addAddress("::1", "ipv6");

/** 127.0.0.0/8 and ::1 (in any spelling; IPv4-mapped addresses are unwrapped first). */
export function isLoopback(addr: string): boolean {
  const family = isIP(addr);
  return family !== 0 && LOOPBACK.check(addr, family === 4 ? "ipv4" : "ipv6");
}

/** One X-Forwarded-For entry as an address; some proxies add a port ("1.2.3.4:5678", "[2001:db8::1]:443"). */
function parseHop(raw: string): string | undefined {
  let hop = raw.trim();
  const bracketed = /^\[([^\]]+)\](?::\d+)?$/.exec(hop);
  if (bracketed?.[1]) hop = bracketed[1];
  else {
    const v4WithPort = /^(\d{1,3}(?:\.\d{1,3}){3}):\d+$/.exec(hop);
    if (v4WithPort?.[1]) hop = v4WithPort[1];
  }
  return isIP(hop) === 0 ? undefined : unwrapMapped(hop.toLowerCase());
}

/** IPv4-mapped IPv6 addresses ("::ffff:10.0.0.1") are unwrapped so one client has one key. */
function unwrapMapped(addr: string): string {
  return addr.startsWith("::ffff:") && isIP(addr.slice(7)) === 4 ? addr.slice(7) : addr;
}
