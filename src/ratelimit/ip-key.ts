import { isIP } from "node:net";

/**
 * The key a client address is limited under. An IPv4 address is its own key; an IPv6 client is keyed by its
 * /64, because one subscriber is routinely given a whole /64 and could otherwise take a fresh address (and a
 * fresh budget) per request.
 */
export function ipKey(ip: string): string {
  if (isIP(ip) !== 6) return ip;
  const groups = expandIpv6(ip);
  return groups ? `${groups.slice(0, 4).join(":")}::/64` : ip;
}

/** The eight 16-bit groups of an IPv6 address, without leading zeros; undefined if it is not one. */
function expandIpv6(ip: string): string[] | undefined {
  let addr = ip.toLowerCase().split("%", 1)[0] ?? "";
  // A trailing dotted IPv4 ("::ffff:1.2.3.4", "64:ff9b::1.2.3.4") is two groups.
  const v4 = /(\d+)\.(\d+)\.(\d+)\.(\d+)$/.exec(addr);
  if (v4) {
    const [a, b, c, d] = v4.slice(1).map(Number) as [number, number, number, number];
    addr = `${addr.slice(0, v4.index)}${((a << 8) | b).toString(16)}:${((c << 8) | d).toString(16)}`;
  }
  const [head = "", tail, ...rest] = addr.split("::");
  if (rest.length > 0) return undefined;
  const left = head === "" ? [] : head.split(":");
  const right = tail === undefined || tail === "" ? [] : tail.split(":");
  const missing = 8 - left.length - right.length;
  if (tail === undefined ? missing !== 0 : missing < 1) return undefined;
  const groups = [...left, ...Array<string>(tail === undefined ? 0 : missing).fill("0"), ...right];
  return groups.map((g) => Number.parseInt(g, 16).toString(16));
}
