import { describe, expect, test } from "bun:test";
import { createAddressPolicy } from "../../../src/net/address-policy.ts";

describe("createAddressPolicy: order of checks", () => {
  const policy = createAddressPolicy({
    trustedCidrs: ["10.20.0.0/16", "fd00:1::/32", "127.0.0.53"],
    selfListeners: [
      { address: "127.0.0.1", port: 3128 },
      { address: "10.20.0.5", port: 8080 },
      { address: "::1", port: 9000 },
    ],
  });

  const rows: [ip: string, port: number, allowed: boolean, rule: string, kind: string][] = [
    // The proxy's own listeners, even inside a trusted range, in any spelling.
    ["127.0.0.1", 3128, false, "net.self-address", "loopback"],
    ["::ffff:127.0.0.1", 3128, false, "net.self-address", "loopback"],
    ["10.20.0.5", 8080, false, "net.self-address", "private"],
    ["::1", 9000, false, "net.self-address", "loopback"],
    // Same address, another port: not the proxy, so trusted or classified.
    ["10.20.0.5", 8081, true, "net.trusted-cidr", "private"],
    ["127.0.0.1", 3129, false, "net.private-address", "loopback"],
    // Trusted ranges win over classification.
    ["10.20.1.1", 443, true, "net.trusted-cidr", "private"],
    ["::ffff:10.20.1.1", 443, true, "net.trusted-cidr", "private"],
    ["fd00:1::5", 443, true, "net.trusted-cidr", "unique-local"],
    ["127.0.0.53", 53, true, "net.trusted-cidr", "loopback"],
    // Classification.
    ["10.21.0.1", 443, false, "net.private-address", "private"],
    ["127.0.0.2", 3128, false, "net.private-address", "loopback"],
    ["169.254.169.254", 80, false, "net.metadata-address", "metadata"],
    ["::ffff:169.254.169.254", 80, false, "net.metadata-address", "metadata"],
    ["fd00:ec2::254", 80, false, "net.metadata-address", "metadata"],
    ["100.100.100.200", 80, false, "net.metadata-address", "metadata"],
    ["2002:a9fe:a9fe::1", 80, false, "net.metadata-address", "metadata"],
    ["8.8.8.8", 443, true, "net.public-address", "public"],
    ["1.1.1.1", 3128, true, "net.public-address", "public"],
    ["2606:4700::1111", 443, true, "net.public-address", "public"],
    ["not-an-ip", 443, false, "net.private-address", "invalid"],
  ];
  test.each(rows)("%p:%p -> allowed=%p %p (%p)", (ip, port, allowed, rule, kind) => {
    const result = policy.check(ip, port);
    expect(result.allowed).toBe(allowed);
    expect(result.rule).toBe(rule);
    expect(result.class.kind).toBe(kind);
    expect(result.detail.length).toBeGreaterThan(0);
  });

  test("detail names the range", () => {
    expect(policy.check("::ffff:127.0.0.1", 80).detail).toBe("loopback 127.0.0.0/8 (via IPv4-mapped IPv6)");
  });
});

describe("createAddressPolicy: wildcard listeners", () => {
  test.each([["0.0.0.0"], ["::"], ["[::]"]])("listener %p refuses every address on its port", (address) => {
    const policy = createAddressPolicy({ trustedCidrs: ["0.0.0.0/0"], selfListeners: [{ address, port: 3128 }] });
    expect(policy.check("8.8.8.8", 3128).rule).toBe("net.self-address");
    expect(policy.check("10.0.0.1", 3128).allowed).toBe(false);
    expect(policy.check("2606:4700::1111", 3128).rule).toBe("net.self-address");
    expect(policy.check("8.8.8.8", 443)).toMatchObject({ allowed: true, rule: "net.trusted-cidr" });
  });
});

describe("createAddressPolicy: configuration errors", () => {
  test("bad trusted CIDR names the entry", () => {
    expect(() => createAddressPolicy({ trustedCidrs: ["10.0.0.0/8", "10.0.0.0/99"], selfListeners: [] })).toThrow(/#1.*10\.0\.0\.0\/99/);
  });
  test("bad listener address names the entry", () => {
    expect(() => createAddressPolicy({ trustedCidrs: [], selfListeners: [{ address: "localhost", port: 1 }] })).toThrow(/"localhost"/);
  });
  test("bad listener port", () => {
    expect(() => createAddressPolicy({ trustedCidrs: [], selfListeners: [{ address: "127.0.0.1", port: 70000 }] })).toThrow(/70000/);
  });
});
