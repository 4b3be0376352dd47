import { describe, expect, test } from "bun:test";
import { cidrContains, createCidrSet, parseCidr } from "../../../src/net/cidr.ts";
import { parseIpLiteral } from "../../../src/net/ip.ts";

const ip = (text: string) => {
  const parsed = parseIpLiteral(text);
  if (parsed === null) throw new Error(`test fixture is not an IP: ${text}`);
  return parsed;
};

describe("parseCidr", () => {
  const good: [input: string, text: string, prefix: number][] = [
    ["10.0.0.0/8", "10.0.0.0/8", 8],
    ["10.1.2.3", "10.1.2.3/32", 32], // bare address is one host
    ["0.0.0.0/0", "0.0.0.0/0", 0],
    ["192.168.0.0/16", "192.168.0.0/16", 16],
    ["172.16.0.0/12", "172.16.0.0/12", 12],
    [" 10.0.0.0/8 ", "10.0.0.0/8", 8],
    ["012.0.0.0/8", "10.0.0.0/8", 8], // any IPv4 spelling
    ["fd00::/8", "fd00::/8", 8],
    ["::1", "::1/128", 128],
    ["::/0", "::/0", 0],
    ["2001:DB8::/32", "2001:db8::/32", 32],
    ["fe80::/10", "fe80::/10", 10],
  ];
  test.each(good)("%p -> %p", (input, text, prefix) => {
    const cidr = parseCidr(input);
    expect(cidr.text).toBe(text);
    expect(cidr.prefix).toBe(prefix);
  });

  const bad: [input: string, message: RegExp][] = [
    ["", /not an IP address/],
    ["10.0.0.0/", /prefix length/],
    ["10.0.0.0/33", /exceeds 32/],
    ["::/129", /exceeds 128/],
    ["10.0.0.0/-1", /prefix length/],
    ["10.0.0.0/08", /prefix length/],
    ["10.0.0.0/8/8", /prefix length/],
    ["10.0.0.0/ 8", /prefix length/],
    ["10.0.0.1/8", /host bits.*10\.0\.0\.0\/8/],
    ["192.168.1.10/24", /did you mean 192\.168\.1\.0\/24/],
    ["fe80::1/10", /host bits/],
    ["fe80::%eth0/10", /zone/],
    ["example.com/24", /not an IP address/],
    ["300.0.0.0/8", /not an IP address/],
  ];
  test.each(bad)("rejects %p", (input, message) => {
    expect(() => parseCidr(input)).toThrow(message);
  });
});

describe("cidrContains", () => {
  const rows: [cidr: string, address: string, inside: boolean][] = [
    ["10.0.0.0/8", "10.0.0.0", true],
    ["10.0.0.0/8", "10.255.255.255", true],
    ["10.0.0.0/8", "11.0.0.0", false],
    ["10.0.0.0/8", "9.255.255.255", false],
    ["172.16.0.0/12", "172.31.0.1", true],
    ["172.16.0.0/12", "172.32.0.1", false],
    ["172.16.0.0/12", "172.15.255.255", false],
    ["100.64.0.0/10", "100.127.255.255", true],
    ["100.64.0.0/10", "100.128.0.0", false],
    ["198.18.0.0/15", "198.19.1.1", true],
    ["198.18.0.0/15", "198.20.0.0", false],
    ["0.0.0.0/0", "8.8.8.8", true],
    ["1.2.3.4/32", "1.2.3.4", true],
    ["1.2.3.4/32", "1.2.3.5", false],
    ["fe80::/10", "febf::1", true],
    ["fe80::/10", "fec0::1", false],
    ["fc00::/7", "fdff::1", true],
    ["fc00::/7", "fe00::1", false],
    ["2001:10::/28", "2001:1f::1", true],
    ["2001:10::/28", "2001:20::1", false],
    ["::/0", "2606:4700::1111", true],
    ["::1/128", "::1", true],
    ["::1/128", "::2", false],
    // Families never mix: ::ffff:10.0.0.1 is not in 10.0.0.0/8 at this level (see unmapIpv4).
    ["10.0.0.0/8", "::ffff:10.0.0.1", false],
    ["::/0", "10.0.0.1", false],
  ];
  test.each(rows)("%p contains %p: %p", (cidr, address, inside) => {
    expect(cidrContains(parseCidr(cidr), ip(address))).toBe(inside);
  });
});

describe("createCidrSet", () => {
  test("matches any member, both families", () => {
    const set = createCidrSet(["10.0.0.0/8", "192.168.1.0/24", "fd00::/8"]);
    expect(set.contains(ip("10.9.9.9"))).toBe(true);
    expect(set.contains(ip("192.168.1.77"))).toBe(true);
    expect(set.contains(ip("192.168.2.1"))).toBe(false);
    expect(set.contains(ip("fd12::1"))).toBe(true);
    expect(set.contains(ip("fe80::1"))).toBe(false);
    expect(set.cidrs.length).toBe(3);
  });
  test("empty set contains nothing", () => {
    expect(createCidrSet([]).contains(ip("10.0.0.1"))).toBe(false);
  });
  test("lists every bad entry with its index", () => {
    let message = "";
    try {
      createCidrSet(["10.0.0.0/8", "nope", "1.2.3.4/40"]);
    } catch (error) {
      message = (error as Error).message;
    }
    expect(message).toContain('#1: invalid CIDR "nope"');
    expect(message).toContain('#2: invalid CIDR "1.2.3.4/40"');
    expect(message).not.toContain("#0");
  });
});
