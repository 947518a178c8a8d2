import { BlockList, isIP } from "node:net";
import fc from "fast-check";
import { describe, expect, it } from "vitest";
import { isIpOrCidr, resolveClientIp, TrustedProxies } from "../src/http/client-ip.js";
import { ipKey } from "../src/ratelimit/ip-key.js";

describe("client IP", () => {
  const none = new TrustedProxies([]);
  const proxies = new TrustedProxies(["127.0.0.1", "10.0.0.0/8", "2001:db8:ffff::/48"]);

  it("is the socket peer when nobody is trusted, whatever X-Forwarded-For says", () => {
    expect(resolveClientIp("203.0.113.9", "198.51.100.1", none)).toBe("203.0.113.9");
    expect(resolveClientIp("::ffff:203.0.113.9", undefined, none)).toBe("203.0.113.9");
  });

  it("ignores a spoofed X-Forwarded-For from a peer that is not a trusted proxy", () => {
    for (const xff of ["198.51.100.1", "10.0.0.1", "1.1.1.1, 2.2.2.2", "garbage", ["1.1.1.1", "2.2.2.2"]]) {
      expect(resolveClientIp("203.0.113.9", xff, proxies)).toBe("203.0.113.9");
    }
  });

  it("from a trusted proxy takes the right-most address that is not a trusted proxy", () => {
    expect(resolveClientIp("127.0.0.1", "198.51.100.7", proxies)).toBe("198.51.100.7");
    // The client wrote "1.1.1.1" itself; our proxies appended what they saw.
    expect(resolveClientIp("127.0.0.1", "1.1.1.1, 198.51.100.7, 10.1.2.3", proxies)).toBe("198.51.100.7");
    expect(resolveClientIp("10.9.9.9", ["1.1.1.1, 198.51.100.7", "10.1.2.3"], proxies)).toBe("198.51.100.7");
    expect(resolveClientIp("::ffff:127.0.0.1", " 198.51.100.8 ", proxies)).toBe("198.51.100.8");
    expect(resolveClientIp("127.0.0.1", "2001:DB8::1", proxies)).toBe("2001:db8::1");
    expect(resolveClientIp("127.0.0.1", "2001:db8:ffff::1, 2001:db8:1::5", proxies)).toBe("2001:db8:1::5");
  });

  it("accepts ports on forwarded addresses", () => {
    expect(resolveClientIp("127.0.0.1", "198.51.100.7:4711", proxies)).toBe("198.51.100.7");
    expect(resolveClientIp("127.0.0.1", "[2001:db8::1]:443", proxies)).toBe("2001:db8::1");
  });

  it("when every hop is trusted, the left-most is the client", () => {
    expect(resolveClientIp("127.0.0.1", "10.0.0.2, 10.0.0.1", proxies)).toBe("10.0.0.2");
    expect(resolveClientIp("127.0.0.1", "", proxies)).toBe("127.0.0.1");
  });

  it("a hop that is not an address stops at the proxy that passed it on", () => {
    expect(resolveClientIp("127.0.0.1", "198.51.100.7, nonsense", proxies)).toBe("127.0.0.1");
    expect(resolveClientIp("127.0.0.1", "nonsense, 10.0.0.5", proxies)).toBe("10.0.0.5");
  });

  it("validates TRUSTED_PROXIES entries", () => {
    for (const ok of ["127.0.0.1", "10.0.0.0/8", "0.0.0.0/0", "::1", "2001:db8::/32", "::/0"]) {
      expect(isIpOrCidr(ok), ok).toBe(true);
    }
    for (const bad of ["", "localhost", "10.0.0.0/33", "::/129", "10.0.0.0/8/8", "10.0.0.0/", "1.2.3"]) {
      expect(isIpOrCidr(bad), bad).toBe(false);
    }
  });

  it("limits IPv4 clients by address and IPv6 clients by their /64", () => {
    expect(ipKey("203.0.113.9")).toBe("203.0.113.9");
    expect(ipKey("2001:db8:1:2:aaaa::1")).toBe("2001:db8:1:2::/64");
    expect(ipKey("2001:0db8:0001:0002:bbbb:cccc:dddd:eeee")).toBe("2001:db8:1:2::/64");
    expect(ipKey("2001:db8::1")).toBe("2001:db8:0:0::/64");
    expect(ipKey("::1")).toBe("0:0:0:0::/64");
    expect(ipKey("64:ff9b::192.0.2.1")).toBe("64:ff9b:0:0::/64");
    expect(ipKey("unknown")).toBe("unknown");
  });
});

describe("TrustedProxies remembers answers without changing them", () => {
  it("agrees with a plain BlockList for every address, before and after its memo fills and starts over", () => {
    const entries = ["127.0.0.1", "10.0.0.0/8", "192.168.4.0/24", "2001:db8:ffff::/48", "::1"];
    const trusted = new TrustedProxies(entries);
    const reference = new BlockList();
    for (const e of entries) {
      const [addr = "", bits] = e.split("/");
      const type = isIP(addr) === 4 ? "ipv4" : "ipv6";
      if (bits === undefined) reference.addAddress(addr, type);
      else reference.addSubnet(addr, Number(bits), type);
    }
    const expected = (ip: string) => isIP(ip) !== 0 && reference.check(ip, isIP(ip) === 4 ? "ipv4" : "ipv6");
    const v4 = fc
      .tuple(fc.constantFrom(10, 127, 192, 203), fc.nat(255), fc.nat(255), fc.nat(255))
      .map((p) => (p[0] === 192 ? `192.168.${p[2]}.${p[3]}` : p.join(".")));
    const v6 = fc
      .tuple(fc.constantFrom("2001:db8:ffff", "2001:db8:fffe"), fc.nat(0xffff))
      .map(([net, host]) => `${net}::${host.toString(16)}`);
    const ip = fc.oneof(v4, v6, fc.constantFrom("::1", "not-an-ip", "", "127.0.0.1"));
    // Over 10 000 lookups: past the memo's size, so it is both used and cleared.
    fc.assert(
      fc.property(fc.array(ip, { minLength: 500, maxLength: 500 }), (ips) => {
        for (const a of ips) expect(trusted.has(a)).toBe(expected(a));
        for (const a of ips) expect(trusted.has(a)).toBe(expected(a));
      }),
      { numRuns: 25 },
    );
  });
});
