import { describe, expect, test } from "bun:test";
import { classifyAddress } from "../../../src/net/classify.ts";
import { parseIpLiteral } from "../../../src/net/ip.ts";

describe("classifyAddress: one row per special-purpose range", () => {
  // [address, kind, range named in the detail]; the first address of a range and one inside it.
  const rows: [address: string, kind: string, range: string][] = [
    ["0.0.0.0", "unspecified", "0.0.0.0/8"],
    ["0.1.2.3", "unspecified", "0.0.0.0/8"],
    ["::", "unspecified", "::/128"],
    ["127.0.0.1", "loopback", "127.0.0.0/8"],
    ["127.255.255.254", "loopback", "127.0.0.0/8"],
    ["::1", "loopback", "::1/128"],
    ["10.0.0.1", "private", "10.0.0.0/8"],
    ["10.255.255.255", "private", "10.0.0.0/8"],
    ["172.16.0.1", "private", "172.16.0.0/12"],
    ["172.31.255.255", "private", "172.16.0.0/12"],
    ["192.168.1.1", "private", "192.168.0.0/16"],
    ["169.254.0.1", "link-local", "169.254.0.0/16"],
    ["fe80::1", "link-local", "fe80::/10"],
    ["febf:ffff::1", "link-local", "fe80::/10"],
    ["169.254.169.254", "metadata", "169.254.169.254/32"],
    ["169.254.170.2", "metadata", "169.254.170.2/32"],
    ["100.100.100.200", "metadata", "100.100.100.200/32"],
    ["168.63.129.16", "metadata", "168.63.129.16/32"],
    ["fd00:ec2::254", "metadata", "fd00:ec2::254/128"],
    ["100.64.0.1", "cgnat", "100.64.0.0/10"],
    ["100.127.255.255", "cgnat", "100.64.0.0/10"],
    ["192.0.0.1", "ietf-protocol", "192.0.0.0/24"],
    ["192.0.2.1", "documentation", "192.0.2.0/24"],
    ["198.51.100.7", "documentation", "198.51.100.0/24"],
    ["203.0.113.9", "documentation", "203.0.113.0/24"],
    ["2001:db8::1", "documentation", "2001:db8::/32"],
    ["3fff::1", "documentation", "3fff::/20"],
    ["3fff:fff::1", "documentation", "3fff::/20"],
    ["198.18.0.1", "benchmarking", "198.18.0.0/15"],
    ["198.19.255.255", "benchmarking", "198.18.0.0/15"],
    ["2001:2::1", "benchmarking", "2001:2::/48"],
    ["224.0.0.1", "multicast", "224.0.0.0/4"],
    ["239.255.255.250", "multicast", "224.0.0.0/4"],
    ["ff02::1", "multicast", "ff00::/8"],
    ["240.0.0.1", "reserved", "240.0.0.0/4"],
    ["255.255.255.254", "reserved", "240.0.0.0/4"],
    ["255.255.255.255", "broadcast", "255.255.255.255/32"],
    ["fc00::1", "unique-local", "fc00::/7"],
    ["fd12:3456::1", "unique-local", "fc00::/7"],
    ["fec0::1", "site-local", "fec0::/10"],
    ["100::1", "discard", "100::/64"],
    ["2001:10::1", "orchid", "2001:10::/28"],
    ["2001:20::1", "orchid", "2001:20::/28"],
  ];
  test.each(rows)("%p is %p", (address, kind, range) => {
    const cls = classifyAddress(address);
    expect(cls.kind).toBe(kind);
    expect(cls.blocked).toBe(true);
    expect(cls.detail).toContain(`${kind} ${range}`);
    expect(cls.detail).not.toContain("(via");
  });
});

describe("classifyAddress: public addresses, including near the edges of blocked ranges", () => {
  const rows: string[] = [
    "8.8.8.8",
    "1.1.1.1",
    "9.255.255.255",
    "11.0.0.0",
    "172.15.255.255",
    "172.32.0.0",
    "192.167.255.255",
    "192.169.0.0",
    "100.63.255.255",
    "100.128.0.0",
    "169.253.255.255",
    "169.255.0.0",
    "198.17.255.255",
    "198.20.0.0",
    "192.0.1.1",
    "192.0.3.0",
    "223.255.255.255",
    "126.255.255.255",
    "128.0.0.0",
    "1.0.0.0",
    "2606:4700::1111",
    "2001:4860:4860::8888",
    "2a00:1450:4001::200e",
    "fe7f:ffff::1", // just below fe80::/10
    "fbff::1", // just below fc00::/7
    "2400:cb00::1", // a plain global unicast
    "2001:db9::1", // just past 2001:db8::/32
    "2001:2:1::1", // just past 2001:2::/48
    "2001:3::1", // AMT, RFC 7450: globally reachable
    "2001:30::1", // past ORCHIDv2
    "100:0:0:1::1", // past 100::/64
    "::2:1:1:1:1", // not the ::/96 IPv4-compatible prefix
  ];
  test.each(rows.map((r) => [r]))("%p", (address) => {
    const cls = classifyAddress(address);
    expect(cls).toEqual({ kind: "public", blocked: false, detail: "public" });
  });
});

describe("classifyAddress: spellings of 127.0.0.1, 10.0.0.1 and 169.254.169.254", () => {
  const rows: [spelling: string, kind: string, via: string | null][] = [
    // 127.0.0.1
    ["2130706433", "loopback", null],
    ["0177.0.0.1", "loopback", null],
    ["0x7f.1", "loopback", null],
    ["0x7f000001", "loopback", null],
    ["127.1", "loopback", null],
    ["::ffff:127.0.0.1", "loopback", "IPv4-mapped IPv6"],
    ["[::ffff:7f00:1]", "loopback", "IPv4-mapped IPv6"],
    ["::ffff:0:127.0.0.1", "loopback", "IPv4-translated IPv6"],
    ["::127.0.0.2", "loopback", "IPv4-compatible IPv6"],
    ["64:ff9b::127.0.0.1", "loopback", "NAT64 64:ff9b::/96"],
    ["64:ff9b:1::7f00:1", "loopback", "local-use NAT64 64:ff9b:1::/48"],
    ["2002:7f00:1::1", "loopback", "6to4"],
    ["2001:0:7f00:1::", "loopback", "Teredo server"],
    ["2001:0:4136:e378:8000:63bf:80ff:fffe", "loopback", "Teredo client"],
    // 10.0.0.1
    ["167772161", "private", null],
    ["012.0.0.1", "private", null],
    ["0xa.1", "private", null],
    ["::ffff:10.0.0.1", "private", "IPv4-mapped IPv6"],
    ["64:ff9b::a00:1", "private", "NAT64 64:ff9b::/96"],
    ["64:ff9b:1::10.0.0.1", "private", "local-use NAT64 64:ff9b:1::/48"],
    ["2002:a00:1::", "private", "6to4"],
    ["2001:0:4136:e378:8000:63bf:f5ff:fffe", "private", "Teredo client"],
    ["2001:0:a00:1:8000:63bf:3fff:fdd2", "private", "Teredo server"],
    // 169.254.169.254
    ["2852039166", "metadata", null],
    ["0xa9.0xfe.0xa9.0xfe", "metadata", null],
    ["0251.0376.0251.0376", "metadata", null],
    ["169.254.43518", "metadata", null],
    ["::ffff:169.254.169.254", "metadata", "IPv4-mapped IPv6"],
    ["::ffff:a9fe:a9fe", "metadata", "IPv4-mapped IPv6"],
    ["64:ff9b::169.254.169.254", "metadata", "NAT64 64:ff9b::/96"],
    ["2002:a9fe:a9fe::", "metadata", "6to4"],
    ["2001:0:4136:e378:8000:63bf:5601:5601", "metadata", "Teredo client"],
  ];
  test.each(rows)("%p is %p via %p", (spelling, kind, via) => {
    const cls = classifyAddress(spelling);
    expect(cls.kind).toBe(kind);
    expect(cls.blocked).toBe(true);
    if (via === null) expect(cls.detail).not.toContain("(via");
    else expect(cls.detail).toEndWith(`(via ${via})`);
  });

  test("detail names the range and the embedding", () => {
    expect(classifyAddress("::ffff:127.0.0.1").detail).toBe("loopback 127.0.0.0/8 (via IPv4-mapped IPv6)");
  });
});

describe("classifyAddress: embeddings of public IPv4 stay public", () => {
  const rows: [address: string, via: string][] = [
    ["::ffff:8.8.8.8", "IPv4-mapped IPv6"],
    ["64:ff9b::1.1.1.1", "NAT64 64:ff9b::/96"],
    ["2002:808:808::1", "6to4"],
    // RFC 4380 example: server 65.54.227.120, client 192.0.2.45 is documentation, so use a
    // client of 8.8.4.4 (inverted: f7f7:fbfb).
    ["2001:0:4136:e378:8000:63bf:f7f7:fbfb", "Teredo server and Teredo client"],
  ];
  test.each(rows)("%p", (address, via) => {
    expect(classifyAddress(address)).toEqual({ kind: "public", blocked: false, detail: `public (via ${via})` });
  });

  test("local-use NAT64 with a public IPv4 in the /96 position is public", () => {
    expect(classifyAddress("64:ff9b:1::8.8.8.8")).toEqual({ kind: "public", blocked: false, detail: "public (via local-use NAT64 64:ff9b:1::/48)" });
  });
  test.each([["64:ff9b:1:7f00:0:100::"], ["64:ff9b:1:1::8.8.8.8"], ["64:ff9b:1:0:0:808:800::"]])(
    "local-use NAT64 outside 64:ff9b:1::/96 is refused as ambiguous: %p",
    (address) => {
      const cls = classifyAddress(address);
      expect(cls.kind).toBe("nat64-local");
      expect(cls.blocked).toBe(true);
    },
  );

  test("Teredo is blocked when only the server is special", () => {
    expect(classifyAddress("2001:0:a9fe:a9fe:8000:63bf:f7f7:fbfb").kind).toBe("metadata");
  });
  test("Teredo is blocked when only the client is special (RFC 4380 example client 192.0.2.45)", () => {
    expect(classifyAddress("2001:0:4136:e378:8000:63bf:3fff:fdd2").kind).toBe("documentation");
  });
});

describe("classifyAddress: input forms", () => {
  test("accepts a ParsedIp", () => {
    expect(classifyAddress(parseIpLiteral("10.1.2.3")!).kind).toBe("private");
  });
  test.each([["not-an-ip"], [""], ["256.1.1.1"], ["1:::2"], ["example.com"]])("unparsable %p is blocked invalid", (input) => {
    const cls = classifyAddress(input);
    expect(cls.kind).toBe("invalid");
    expect(cls.blocked).toBe(true);
  });
});
